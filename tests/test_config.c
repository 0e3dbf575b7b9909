/* Configuration module: the key table, YAML loading, --set, validation, the effective-config
 * printer and the derived schedules.  Serial logic, but the library links MPI, so the run is
 * wrapped in MPI_Init/Finalize (registered with 1 rank).  YAML inputs are written to a
 * private temporary folder; every error case checks the code (NTK_ERR_INPUT), that the
 * message is one line, and that it names the file, the line and the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glob.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ntk_config.h"
#include "ntk_error.h"

/* |a - b| <= tol, printing both values (this cmocka has no double assertion) */
static void assert_near(double a, double b, double tol) {
  if (!(fabs(a - b) <= tol)) fail_msg("%.17g != %.17g (tolerance %g)", a, b, tol);
}

static char tmpdir[256];
static int nfiles;

/* Write text to a fresh file in tmpdir; returns its path (static storage, rotating). */
static const char *write_yaml(const char *text) {
  static char paths[8][512];
  char *p = paths[nfiles % 8];
  snprintf(p, sizeof paths[0], "%s/c%03d.yaml", tmpdir, nfiles++);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return p;
}

static int setup(void **state) {
  (void)state;
  ntk_err_clear();
  return 0;
}

static void assert_contains(const char *hay, const char *needle) {
  if (!strstr(hay, needle)) fail_msg("message \"%s\" lacks \"%s\"", hay, needle);
}

static void assert_one_line_input_error(int rc) {
  assert_int_equal(rc, NTK_ERR_INPUT);
  assert_int_equal(ntk_err_code(), NTK_ERR_INPUT);
  assert_null(strchr(ntk_err_message(), '\n'));
}

/* Load yaml, expect an input error whose message starts "FILE:LINE: " and contains need. */
static void expect_load_error(const char *yaml, int line, const char *need1, const char *need2) {
  ntk_config cfg;
  ntk_err_clear();
  const char *path = write_yaml(yaml);
  int rc = ntk_config_load(path, &cfg);
  assert_one_line_input_error(rc);
  const char *msg = ntk_err_message();
  char prefix[600];
  snprintf(prefix, sizeof prefix, "%s:%d:", path, line);
  if (strncmp(msg, prefix, strlen(prefix)) != 0)
    fail_msg("message \"%s\" does not start with \"%s\"", msg, prefix);
  if (need1) assert_contains(msg, need1);
  if (need2) assert_contains(msg, need2);
  ntk_err_clear();
}

/* --------------------------------------------------------------- table -- */

static void test_table(void **state) {
  (void)state;
  assert_true(ntk_config_nkeys >= 45);
  for (int i = 0; i < ntk_config_nkeys; ++i) {
    const ntk_config_key *k = &ntk_config_keys[i];
    assert_non_null(k->doc);
    assert_true(strlen(k->doc) > 5);
    assert_ptr_equal(ntk_config_find_key(k->name), k);
    if (k->type == NTK_KEY_ENUM) assert_non_null(k->choices);
    for (int j = 0; j < i; ++j) {
      assert_string_not_equal(ntk_config_keys[j].name, k->name);
      assert_true(ntk_config_keys[j].offset != k->offset); /* one field per key */
    }
    assert_true(k->offset + 1 <= sizeof(ntk_config));
  }
  /* keys of one section are adjacent, so the YAML printer emits each section once */
  for (int i = 0; i < ntk_config_nkeys; ++i)
    for (int j = i + 2; j < ntk_config_nkeys; ++j) {
      const char *a = ntk_config_keys[i].name, *b = ntk_config_keys[j].name;
      const char *da = strchr(a, '.'), *db = strchr(b, '.');
      if (!da || !db || da - a != db - b || strncmp(a, b, (size_t)(da - a)) != 0) continue;
      for (int m = i + 1; m < j; ++m)
        assert_int_equal(strncmp(ntk_config_keys[m].name, a, (size_t)(da - a) + 1), 0);
    }
  /* every key the brief names exists */
  static const char *const must[] = {"seed",
                                     "verbosity",
                                     "model.width",
                                     "model.depth",
                                     "model.activation",
                                     "model.leaky_slope",
                                     "model.weight_std",
                                     "model.bias_std",
                                     "fourier.features",
                                     "fourier.scale",
                                     "fourier.trainable",
                                     "fourier.project",
                                     "residual.alpha",
                                     "residual.schedule",
                                     "residual.power",
                                     "residual.skip",
                                     "depth.survival",
                                     "depth.schedule",
                                     "depth.mask",
                                     "data.source",
                                     "data.n_train",
                                     "data.n_test",
                                     "data.dim",
                                     "data.outputs",
                                     "data.noise",
                                     "data.path",
                                     "data.classes",
                                     "data.standardize",
                                     "ntk.method",
                                     "ntk.network",
                                     "ntk.mask_samples",
                                     "ntk.top_k",
                                     "ntk.chunk_mb",
                                     "eigensolver.type",
                                     "eigensolver.matrix_free",
                                     "eigensolver.tol",
                                     "eigensolver.max_it",
                                     "eigensolver.ncv",
                                     "eigensolver.frobenius_probes",
                                     "grid.rows",
                                     "grid.cols",
                                     "grid.block_size",
                                     "output.path",
                                     "output.save_data",
                                     "output.save_params",
                                     "output.save_ntk",
                                     "output.save_eigenvectors",
                                     "output.overwrite",
                                     "analytic.enabled",
                                     "analytic.fourier",
                                     "analytic.quadrature_order",
                                     "analytic.enumerate_depth",
                                     "analytic.mask_samples",
                                     "train.steps",
                                     "train.optimizer",
                                     "train.batch_size",
                                     "train.lr",
                                     "train.lr_scale",
                                     "train.measure",
                                     "train.measure_every",
                                     "train.measure_points",
                                     "train.measure_steps",
                                     "train.divergence_factor",
                                     "train.checkpoint_every",
                                     "train.checkpoint",
                                     "memory.limit_mb"};
  for (size_t i = 0; i < sizeof must / sizeof must[0]; ++i)
    if (!ntk_config_find_key(must[i])) fail_msg("key %s missing", must[i]);
  assert_int_equal(ntk_config_nkeys, (int)(sizeof must / sizeof must[0]));
}

static void test_defaults(void **state) {
  (void)state;
  ntk_config c;
  ntk_config_defaults(&c);
  assert_int_equal(ntk_err_code(), NTK_OK); /* every table default parses */
  assert_string_equal(c.source, "<none>");
  assert_int_equal(c.model.width, 512);
  assert_int_equal(c.model.depth, 4);
  assert_int_equal(c.model.activation, NTK_ACT_RELU);
  assert_true(c.model.weight_std == 1.0);
  assert_true(c.model.bias_std == 0.1);
  assert_int_equal(c.fourier.features, 64);
  assert_true(c.fourier.scale == 1.0);
  assert_int_equal(c.fourier.trainable, 0);
  assert_int_equal(c.fourier.project, 1);
  assert_true(c.residual.alpha == 1.0);
  assert_int_equal(c.residual.schedule, NTK_ALPHA_INV_SQRT_DEPTH);
  assert_true(c.residual.power == 1.0);
  assert_int_equal(c.residual.skip, 1);
  assert_true(c.depth.survival == 1.0);
  assert_int_equal(c.depth.schedule, NTK_SURVIVAL_UNIFORM);
  assert_int_equal(c.depth.mask_len, 0);
  assert_int_equal(c.data.source, NTK_DATA_SYNTHETIC_1D);
  assert_string_equal(c.data.path, "");
  assert_int_equal(c.data.n_classes, 0);
  assert_int_equal(c.ntk.top_k, 0);
  assert_string_equal(c.eigensolver.type, "auto");
  assert_int_equal(c.grid.rows, 0);
  assert_int_equal(c.grid.cols, 0);
  assert_int_equal(c.grid.block_size, 0); /* automatic */
  assert_string_equal(c.output.path, "ntkspec.h5");
  assert_int_equal(c.output.overwrite, 0);
  assert_int_equal(c.analytic.enabled, 0);
  assert_int_equal(c.analytic.fourier, NTK_FOURIER_EXACT);
  assert_int_equal(c.analytic.quadrature_order, 0);
  assert_int_equal(c.analytic.enumerate_depth, 10);
  assert_int_equal(c.analytic.mask_samples, 256);
  assert_int_equal(ntk_config_validate(&c), NTK_OK);
  assert_int_equal(c.data.dim, 1);
}

/* ---------------------------------------------------------------- loading -- */

static void test_load_valid(void **state) {
  (void)state;
  const char *path = write_yaml(
      "# a comment\n"
      "seed: 12345678901234\n"
      "model:\n"
      "  width: 1024   # trailing comment\n"
      "  activation: tanh\n"
      "  weight_std: 1.5\n"
      "fourier:\n"
      "  features: 0\n"
      "  project: no\n"
      "model.depth: 3\n" /* dotted keys at top level work too */
      "depth:\n"
      "  mask: [1, 0, 1]\n"
      "  survival: 0.8\n"
      "  schedule: linear\n"
      "data:\n"
      "  source: teacher\n"
      "  dim: 1024\n"
      "  classes:\n"
      "    - 3\n"
      "    - 7\n"
      "  path: \"/x/y z.h5\"\n"
      "  noise: 1e-3\n"
      "output:\n"
      "  path: 'out.h5'\n"
      "  save_ntk: On\n"
      "grid: {rows: 2, cols: 1}\n"
      "analytic:\n");
  ntk_config c;
  assert_int_equal(ntk_config_load(path, &c), NTK_OK);
  assert_string_equal(c.source, path);
  assert_true(c.seed == 12345678901234ULL);
  assert_int_equal(c.model.width, 1024);
  assert_int_equal(c.model.depth, 3);
  assert_int_equal(c.model.activation, NTK_ACT_TANH);
  assert_true(c.model.weight_std == 1.5);
  assert_true(c.model.bias_std == 0.1); /* untouched default */
  assert_int_equal(c.fourier.features, 0);
  assert_int_equal(c.fourier.project, 0);
  assert_int_equal(c.depth.mask_len, 3);
  assert_int_equal(c.depth.mask[0], 1);
  assert_int_equal(c.depth.mask[1], 0);
  assert_int_equal(c.depth.mask[2], 1);
  assert_true(c.depth.survival == 0.8);
  assert_int_equal(c.depth.schedule, NTK_SURVIVAL_LINEAR);
  assert_int_equal(c.data.source, NTK_DATA_TEACHER);
  assert_int_equal(c.data.n_classes, 2);
  assert_int_equal(c.data.classes[1], 7);
  assert_string_equal(c.data.path, "/x/y z.h5");
  assert_true(c.data.noise == 1e-3);
  assert_string_equal(c.output.path, "out.h5");
  assert_int_equal(c.output.save_ntk, 1);
  assert_int_equal(c.grid.rows, 2);
  assert_int_equal(c.grid.cols, 1);
  assert_int_equal(ntk_config_validate(&c), NTK_OK); /* width 1024 == dim, no features */
}

static void test_empty_files(void **state) {
  (void)state;
  ntk_config d, c;
  ntk_config_defaults(&d);
  const char *texts[] = {"", "# only a comment\n\n", "---\n", "~\n"};
  for (int i = 0; i < 4; ++i) {
    const char *p = write_yaml(texts[i]);
    assert_int_equal(ntk_config_load(p, &c), NTK_OK);
    assert_null(ntk_config_diff(&c, &d));
  }
}

static void test_load_errors(void **state) {
  (void)state;
  ntk_config c;
  /* missing file and a folder */
  char missing[512];
  snprintf(missing, sizeof missing, "%s/does-not-exist.yaml", tmpdir);
  assert_one_line_input_error(ntk_config_load(missing, &c));
  char want[700];
  snprintf(want, sizeof want, "cannot open %s: No such file or directory", missing);
  assert_string_equal(ntk_err_message(), want);
  ntk_err_clear();
  assert_one_line_input_error(ntk_config_load(tmpdir, &c));
  assert_contains(ntk_err_message(), "Is a directory");
  ntk_err_clear();

  /* syntax: line and column from libyaml */
  expect_load_error("model:\n  width: 3\n   depth: 4\n", 3, "YAML syntax error:", NULL);
  expect_load_error("model: {width: 3\n", 2, "YAML syntax error:", NULL);
  expect_load_error("seed: 1\n---\nseed: 2\n", 3, "only one YAML document", NULL);
  expect_load_error("- 1\n- 2\n", 1, "top level must be a mapping", NULL);

  /* unknown keys, with and without a suggestion */
  expect_load_error("seed: 1\nmodel:\n  widht: 12\n", 3,
                    "unknown key 'model.widht' (did you mean 'model.width'?)", NULL);
  expect_load_error("modle:\n  width: 12\n", 1, "unknown key 'modle' (did you mean 'model'?)",
                    NULL);
  expect_load_error("width: 12\n", 1, "unknown key 'width' (did you mean 'model.width'?)", NULL);
  expect_load_error("\nquux:\n  zzz: 1\n", 2, "unknown key 'quux'", NULL);
  {
    const char *p = write_yaml("quux: 1\n");
    assert_int_equal(ntk_config_load(p, &c), NTK_ERR_INPUT);
    assert_null(strstr(ntk_err_message(), "did you mean"));
    ntk_err_clear();
  }

  /* wrong types */
  expect_load_error("model:\n  depth: 2\n  width: abc\n", 3,
                    "model.width: expected an integer, got 'abc'", "(allowed: >= 1)");
  expect_load_error("model:\n  width: 12abc\n", 2, "model.width: expected an integer", NULL);
  expect_load_error("model:\n  width: 1.5\n", 2, "model.width: expected an integer, got '1.5'",
                    NULL);
  expect_load_error("model:\n  width: 0x10\n", 2, "model.width: expected an integer", NULL);
  expect_load_error("model:\n  width: 99999999999\n", 2, "model.width: 99999999999 is out of range",
                    NULL);
  expect_load_error("model:\n  width: 999999999999999999999999\n", 2,
                    "model.width: 999999999999999999999999 is out of range", NULL);
  expect_load_error("seed: -1\n", 1, "seed: expected an integer, got '-1'", NULL);
  expect_load_error("seed: 18446744073709551616\n", 1, "seed:", "out of range");
  expect_load_error("model:\n  weight_std: .nan\n", 2, "model.weight_std: '.nan' is not a finite",
                    NULL);
  expect_load_error("model:\n  weight_std: inf\n", 2, "model.weight_std: 'inf' is not a finite",
                    NULL);
  expect_load_error("model:\n  weight_std: 1e999\n", 2, "model.weight_std: '1e999' is not a finite",
                    NULL);
  expect_load_error("model:\n  weight_std: one\n", 2, "model.weight_std: expected a number", NULL);
  expect_load_error("fourier:\n  trainable: maybe\n", 2,
                    "fourier.trainable: expected a boolean, got 'maybe'",
                    "(allowed: true, false, yes, no, on, off, 1, 0)");
  expect_load_error("model:\n  width:\n", 2, "model.width: missing value", NULL);

  /* ranges */
  expect_load_error("depth:\n  survival: 0\n", 2, "depth.survival: 0 is out of range",
                    "(allowed: > 0 and <= 1)");
  expect_load_error("depth:\n  survival: 1.01\n", 2, "depth.survival: 1.01 is out of range", NULL);
  expect_load_error("model:\n  width: 0\n", 2, "model.width: 0 is out of range", NULL);
  expect_load_error("data:\n  n_test: -1\n", 2, "data.n_test: -1 is out of range",
                    "(allowed: >= 0)");
  expect_load_error("model:\n  bias_std: -0.5\n", 2, "model.bias_std: -0.5 is out of range", NULL);
  expect_load_error("verbosity: 3\n", 1, "verbosity: 3 is out of range", "(allowed: 0 .. 2)");
  expect_load_error("depth:\n  mask: [1, 2]\n", 2, "depth.mask: list element 2 is out of range",
                    NULL);
  expect_load_error("data:\n  classes:\n    - 1\n    - 10\n", 4,
                    "data.classes: list element 10 is out of range", "0 .. 9");
  expect_load_error("data:\n  classes: [1, x]\n", 2,
                    "data.classes: expected an integer list "
                    "element, got 'x'",
                    NULL);
  expect_load_error("output:\n  path: ''\n", 2, "output.path: must not be empty", NULL);

  /* enums and the eigensolver name */
  expect_load_error("model:\n  activation: swish\n", 2,
                    "model.activation: unknown value 'swish'",
                    "(allowed: relu, erf, tanh, gelu, identity, leaky_relu, abs, sin, cos, "
                    "softplus, silu, sigmoid, sign)");
  expect_load_error("data:\n  source: mnist\n", 2, "data.source: unknown value 'mnist'",
                    "synthetic_1d, teacher, sphere, fashion_mnist, hdf5");
  expect_load_error("eigensolver:\n  type: elpa\n", 2, "eigensolver.type: unknown value 'elpa'",
                    "pdsyevr, pdsyevd");

  /* structure */
  expect_load_error("model:\n  width:\n    a: 1\n", 3,
                    "model.width: expected an integer, got a "
                    "mapping",
                    NULL);
  expect_load_error("model:\n  width: [1, 2]\n", 2,
                    "model.width: expected an integer, got a "
                    "sequence",
                    NULL);
  expect_load_error("model: 5\n", 1, "model: expected a mapping of model.* keys", NULL);
  expect_load_error("depth:\n  mask:\n    - [1]\n", 3, "depth.mask: expected a list of integers",
                    NULL);

  /* duplicates, within one mapping and across nested/dotted spellings */
  expect_load_error("model:\n  width: 3\n  width: 4\n", 3,
                    "model.width: duplicate key (first given at line 2)", NULL);
  expect_load_error("model:\n  width: 3\nmodel:\n  depth: 4\n", 3,
                    "model: duplicate key (first given at line 1)", NULL);
  expect_load_error("model:\n  width: 3\nmodel.width: 4\n", 3,
                    "model.width: duplicate key (first given at line 2)", NULL);
}

/* -------------------------------------------------------------- suggestion -- */

static void test_suggest(void **state) {
  (void)state;
  assert_string_equal(ntk_config_suggest("model.widht"), "model.width");
  assert_string_equal(ntk_config_suggest("model.wdith"), "model.width");
  assert_string_equal(ntk_config_suggest("modle"), "model");
  assert_string_equal(ntk_config_suggest("fourier.feature"), "fourier.features");
  assert_string_equal(ntk_config_suggest("residual.schedul"), "residual.schedule");
  assert_string_equal(ntk_config_suggest("model.features"), "fourier.features");
  assert_string_equal(ntk_config_suggest("eigensolver.tpye"), "eigensolver.type");
  assert_null(ntk_config_suggest("xyzzy"));
  assert_null(ntk_config_suggest("learning_rate"));
  assert_null(ntk_config_suggest(""));
}

/* --------------------------------------------------------------------- --set -- */

static void test_set(void **state) {
  (void)state;
  ntk_config c;
  ntk_config_defaults(&c);
  assert_int_equal(ntk_config_set(&c, "model.width=1024"), NTK_OK);
  assert_int_equal(c.model.width, 1024);
  assert_int_equal(ntk_config_set(&c, " model.activation = gelu "), NTK_OK);
  assert_int_equal(c.model.activation, NTK_ACT_GELU);
  assert_int_equal(ntk_config_set(&c, "depth.mask=[1,0,1,1]"), NTK_OK);
  assert_int_equal(c.depth.mask_len, 4);
  assert_int_equal(c.depth.mask[1], 0);
  assert_int_equal(c.depth.mask[3], 1);
  assert_int_equal(ntk_config_set(&c, "depth.mask=0, 1,1"), NTK_OK);
  assert_int_equal(c.depth.mask_len, 3);
  assert_int_equal(c.depth.mask[0], 0);
  assert_int_equal(ntk_config_set(&c, "depth.mask=1"), NTK_OK);
  assert_int_equal(c.depth.mask_len, 1);
  assert_int_equal(ntk_config_set(&c, "depth.mask=[]"), NTK_OK);
  assert_int_equal(c.depth.mask_len, 0);
  assert_int_equal(ntk_config_set(&c, "data.classes=[ 0 , 9 ]"), NTK_OK);
  assert_int_equal(c.data.n_classes, 2);
  assert_int_equal(c.data.classes[1], 9);
  assert_int_equal(ntk_config_set(&c, "data.classes="), NTK_OK);
  assert_int_equal(c.data.n_classes, 0);
  assert_int_equal(ntk_config_set(&c, "output.path='a b=c.h5'"), NTK_OK);
  assert_string_equal(c.output.path, "a b=c.h5");
  assert_int_equal(ntk_config_set(&c, "data.path=\"q\\\"x\""), NTK_OK);
  assert_string_equal(c.data.path, "q\"x");
  assert_int_equal(ntk_config_set(&c, "seed=18446744073709551615"), NTK_OK);
  assert_true(c.seed == UINT64_MAX);
  assert_int_equal(ntk_config_set(&c, "fourier.trainable=yes"), NTK_OK);
  assert_int_equal(c.fourier.trainable, 1);
  assert_int_equal(ntk_config_set(&c, "fourier.trainable=OFF"), NTK_OK);
  assert_int_equal(c.fourier.trainable, 0);
  assert_int_equal(ntk_config_set(&c, "depth.survival=0.25"), NTK_OK);
  assert_true(c.depth.survival == 0.25);
  assert_int_equal(ntk_config_set(&c, "eigensolver.type=pdsyevd"), NTK_OK);
  assert_string_equal(c.eigensolver.type, "pdsyevd");

  /* errors: the key, what is wrong, what is allowed; the config keeps its old value */
  struct {
    const char *set, *msg;
  } bad[] = {
      {"model.width=x", "--set model.width: expected an integer, got 'x' (allowed: >= 1)"},
      {"model.width=", "--set model.width: missing value"},
      {"model.width=2.5", "--set model.width: expected an integer, got '2.5'"},
      {"model.activation=swish",
       "--set model.activation: unknown value 'swish' (allowed: "
       "relu, erf, tanh, gelu, identity, leaky_relu, abs, sin, cos, softplus, silu, sigmoid, "
       "sign)"},
      {"depth.survival=nan", "--set depth.survival: 'nan' is not a finite number"},
      {"depth.mask=[1,0", "--set depth.mask: expected a list like [1, 0, 1]"},
      {"depth.mask=1,,0", "--set depth.mask: expected an integer list element, got ''"},
      {"depth.mask=[1,3]", "--set depth.mask: list element 3 is out of range"},
      {"model.widht=3", "--set: unknown key 'model.widht' (did you mean 'model.width'?)"},
      {"nonsense=3", "--set: unknown key 'nonsense'"},
      {"model=3", "--set model: is a section"},
      {"model.width", "expected KEY=VALUE"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    ntk_err_clear();
    assert_one_line_input_error(ntk_config_set(&c, bad[i].set));
    assert_contains(ntk_err_message(), bad[i].msg);
  }
  ntk_err_clear();
  assert_int_equal(c.model.width, 1024);
  assert_true(c.depth.survival == 0.25);
}

/* ---------------------------------------------------------------- validate -- */

static void expect_invalid(ntk_config *c, const char *need1, const char *need2) {
  ntk_err_clear();
  assert_one_line_input_error(ntk_config_validate(c));
  assert_contains(ntk_err_message(), need1);
  if (need2) assert_contains(ntk_err_message(), need2);
  ntk_err_clear();
}

static void test_validate(void **state) {
  (void)state;
  ntk_config c;
  char want[700];

  /* width fixed by project: false, reported at the width's line in the file */
  const char *p = write_yaml("fourier:\n  features: 16\n  project: false\nmodel:\n  width: 64\n");
  assert_int_equal(ntk_config_load(p, &c), NTK_OK);
  snprintf(want, sizeof want, "%s:5: model.width: ", p);
  expect_invalid(&c, want, "2*fourier.features = 32, got 64");
  c.model.width = 32;
  assert_int_equal(ntk_config_validate(&c), NTK_OK);

  /* features 0, project false: width must be d, known for synthetic sources */
  p = write_yaml("fourier: {features: 0, project: false}\ndata: {source: sphere, dim: 3}\n");
  assert_int_equal(ntk_config_load(p, &c), NTK_OK);
  snprintf(want, sizeof want, "%s: model.width: ", p); /* width not in the file: no line */
  expect_invalid(&c, want, "data.dim = 3, got 512");
  assert_int_equal(ntk_config_set(&c, "model.width=3"), NTK_OK);
  assert_int_equal(ntk_config_validate(&c), NTK_OK);
  /* hdf5: d unknown until the file is read, so no check here */
  assert_int_equal(ntk_config_set(&c, "data.source=hdf5"), NTK_OK);
  assert_int_equal(ntk_config_set(&c, "data.path=x.h5"), NTK_OK);
  c.model.width = 77;
  assert_int_equal(ntk_config_validate(&c), NTK_OK);

  /* depth.mask length, at the mask's line */
  p = write_yaml("model:\n  depth: 4\ndepth:\n  mask: [1, 0, 1]\n");
  assert_int_equal(ntk_config_load(p, &c), NTK_OK);
  snprintf(want, sizeof want, "%s:4: depth.mask: has 3 entries but model.depth is 4", p);
  expect_invalid(&c, want, NULL);
  /* ... and after a --set the message points at the override */
  assert_int_equal(ntk_config_set(&c, "model.depth=3"), NTK_OK);
  assert_int_equal(ntk_config_validate(&c), NTK_OK);
  assert_int_equal(ntk_config_set(&c, "depth.mask=1,1"), NTK_OK);
  expect_invalid(&c, "--set depth.mask: has 2 entries but model.depth is 3", NULL);

  /* data.path required for hdf5; fashion_mnist gets Debian's folder */
  p = write_yaml("data:\n  n_train: 10\n  source: hdf5\n");
  assert_int_equal(ntk_config_load(p, &c), NTK_OK);
  snprintf(want, sizeof want, "%s:3: data.source: data.source hdf5 needs data.path", p);
  expect_invalid(&c, want, NULL);
  ntk_config_defaults(&c);
  c.data.source = NTK_DATA_FASHION_MNIST;
  assert_int_equal(ntk_config_validate(&c), NTK_OK);
  assert_string_equal(c.data.path, "/usr/share/datasets/fashion-mnist");
  c.data.n_train = 60001;
  expect_invalid(&c, "data.n_train: Fashion-MNIST has 60000 training images", NULL);
  c.data.n_train = 100;
  c.data.n_classes = 1;
  expect_invalid(&c, "data.classes: a class subset needs at least 2 classes", NULL);
  c.data.n_classes = 3;
  c.data.classes[0] = 4, c.data.classes[1] = 2, c.data.classes[2] = 4;
  expect_invalid(&c, "data.classes: class 4 is listed twice", NULL);

  /* synthetic_1d: d is 1; an explicit other d is a mistake */
  p = write_yaml("data:\n  dim: 5\n");
  assert_int_equal(ntk_config_load(p, &c), NTK_OK);
  snprintf(want, sizeof want, "%s:2: data.dim: data.source synthetic_1d has 1-dimensional", p);
  expect_invalid(&c, want, NULL);
  ntk_config_defaults(&c);
  c.data.source = NTK_DATA_SPHERE;
  expect_invalid(&c, "data.dim: data.source sphere needs", "d >= 2");

  /* stochastic depth without skip connections, trainable G without G */
  ntk_config_defaults(&c);
  assert_int_equal(ntk_config_set(&c, "residual.skip=false"), NTK_OK);
  assert_int_equal(ntk_config_validate(&c), NTK_OK);
  assert_int_equal(ntk_config_set(&c, "depth.survival=0.5"), NTK_OK);
  expect_invalid(&c, "--set depth.survival: stochastic depth drops residual branches", NULL);
  ntk_config_defaults(&c);
  c.fourier.trainable = 1;
  c.fourier.features = 0;
  expect_invalid(&c, "fourier.trainable: true needs Fourier features", NULL);

  /* n_train 0 means "all rows" only for a file */
  ntk_config_defaults(&c);
  assert_int_equal(ntk_config_set(&c, "data.n_train=0"), NTK_OK);
  expect_invalid(&c, "--set data.n_train: data.source synthetic_1d needs at least one", NULL);
  assert_int_equal(ntk_config_set(&c, "data.source=hdf5"), NTK_OK);
  assert_int_equal(ntk_config_set(&c, "data.path=f.h5"), NTK_OK);
  assert_int_equal(ntk_config_validate(&c), NTK_OK);

  /* top_k, grid */
  ntk_config_defaults(&c);
  c.ntk.top_k = c.data.n_train + 1;
  expect_invalid(&c, "ntk.top_k: 257 exceeds data.n_train = 256", NULL);
  ntk_config_defaults(&c);
  c.grid.rows = 2;
  expect_invalid(&c, "grid.cols: give both grid.rows and grid.cols", NULL);

  /* values set by code are range-checked too */
  ntk_config_defaults(&c);
  c.model.depth = 0;
  expect_invalid(&c, "model.depth: 0 is out of range (allowed: >= 1)", NULL);
  ntk_config_defaults(&c);
  c.model.activation = 13;
  expect_invalid(&c, "model.activation: 13 is not a valid value", NULL);
  ntk_config_defaults(&c);
  c.depth.survival = NAN;
  expect_invalid(&c, "depth.survival: nan is out of range", NULL);
  ntk_config_defaults(&c);
  strcpy(c.eigensolver.type, "dsyev");
  expect_invalid(&c, "eigensolver.type: unknown value 'dsyev'", NULL);

  /* ntk.method matrix_free: the top K only, no dense kernel, a basis larger than K */
  ntk_config_defaults(&c);
  assert_int_equal(ntk_config_set(&c, "ntk.method=matrix_free"), NTK_OK);
  expect_invalid(&c, "ntk.top_k: ntk.method matrix_free computes the top K eigenpairs "
                 "only and needs K (allowed: 1 .. data.n_train)", NULL);
  assert_int_equal(ntk_config_set(&c, "ntk.top_k=16"), NTK_OK);
  assert_int_equal(ntk_config_validate(&c), NTK_OK);
  assert_int_equal(ntk_config_set(&c, "output.save_ntk=true"), NTK_OK);
  expect_invalid(&c, "--set output.save_ntk: ntk.method matrix_free never forms the N x N "
                 "kernel (allowed: false)", NULL);
  assert_int_equal(ntk_config_set(&c, "output.save_ntk=false"), NTK_OK);
  assert_int_equal(ntk_config_set(&c, "eigensolver.ncv=16"), NTK_OK);
  expect_invalid(&c, "--set eigensolver.ncv: 16: the basis must be larger than ntk.top_k = 16 "
                 "and at most data.n_train (allowed: 0 or 17 .. 256)", NULL);
  assert_int_equal(ntk_config_set(&c, "eigensolver.ncv=257"), NTK_OK);
  expect_invalid(&c, "--set eigensolver.ncv: 257: the basis", NULL);
  assert_int_equal(ntk_config_set(&c, "eigensolver.ncv=256"), NTK_OK);
  assert_int_equal(ntk_config_validate(&c), NTK_OK);
  assert_int_not_equal(ntk_config_set(&c, "eigensolver.matrix_free=krylov"), NTK_OK);
  assert_int_not_equal(ntk_config_set(&c, "eigensolver.tol=0"), NTK_OK);
  assert_int_not_equal(ntk_config_set(&c, "eigensolver.tol=0.5"), NTK_OK);
  assert_int_not_equal(ntk_config_set(&c, "eigensolver.max_it=-1"), NTK_OK);
}

/* ------------------------------------------------------------ round trip -- */

/* A config in which every key differs from its default. */
static const char *all_changed_yaml =
    "seed: 18446744073709551615\n"
    "verbosity: 2\n"
    "model: {width: 32, depth: 3, activation: erf, leaky_slope: -0.25, weight_std: 1.3, bias_std: "
    "0.30000000000000004}\n"
    "fourier: {features: 16, scale: 2.5e-3, trainable: true, project: false}\n"
    "residual: {alpha: 0.7, schedule: power, power: 0.5, skip: false}\n"
    "depth: {survival: 0.9, schedule: linear, mask: [1, 1, 1]}\n"
    "data:\n"
    "  source: fashion_mnist\n"
    "  n_train: 100\n"
    "  n_test: 50\n"
    "  dim: 7\n"
    "  outputs: 3\n"
    "  noise: 0.1\n"
    "  path: \"/tmp/odd \\\"name\\\\ \\t.h5\"\n"
    "  classes: [0, 9, 3]\n"
    "  standardize: false\n"
    "ntk: {method: jacobian, network: mask_average, mask_samples: 5, top_k: 10, chunk_mb: 0.5}\n"
    "eigensolver: {type: pdsyevd, matrix_free: lanczos, tol: 1e-8, max_it: 50, ncv: 40,\n"
    "              frobenius_probes: 12}\n"
    "grid: {rows: 2, cols: 3, block_size: 8}\n"
    "output: {path: r.h5, save_data: false, save_params: true, save_ntk: true,\n"
    "         save_eigenvectors: true, overwrite: true}\n"
    "analytic: {enabled: true, fourier: limit, quadrature_order: 20, enumerate_depth: 4,\n"
    "           mask_samples: 99}\n"
    "train: {steps: 300, optimizer: sgd, batch_size: 20, lr: 0.25, lr_scale: 0.75, measure: list,\n"
    "        measure_every: 7, measure_points: 9, measure_steps: [0, 10, 300],\n"
    "        divergence_factor: 1e3, checkpoint_every: 100, checkpoint: \"c.ckpt\"}\n"
    "memory: {limit_mb: 2048.5}\n";

static void test_round_trip(void **state) {
  (void)state;
  ntk_config a, b, d;
  ntk_config_defaults(&d);
  const char *p = write_yaml(all_changed_yaml);
  assert_int_equal(ntk_config_load(p, &a), NTK_OK);
  /* every key really differs from the default, so the round trip covers them all */
  char va[2 * NTK_PATH_MAX], vd[2 * NTK_PATH_MAX];
  for (int i = 0; i < ntk_config_nkeys; ++i) {
    ntk_config_value_text(&a, &ntk_config_keys[i], va, sizeof va);
    ntk_config_value_text(&d, &ntk_config_keys[i], vd, sizeof vd);
    if (strcmp(va, vd) == 0) fail_msg("key %s kept its default %s", ntk_config_keys[i].name, vd);
  }
  assert_string_equal(a.data.path, "/tmp/odd \"name\\ \t.h5");

  for (int commented = 0; commented < 2; ++commented) {
    char *text = commented ? ntk_config_to_yaml_commented(&a) : ntk_config_to_yaml(&a);
    assert_non_null(text);
    /* every key appears once, as "leaf: " under its section */
    for (int i = 0; i < ntk_config_nkeys; ++i) {
      const char *dot = strchr(ntk_config_keys[i].name, '.');
      char leaf[80];
      snprintf(leaf, sizeof leaf, "%s%s: ", dot ? "\n  " : "\n",
               dot ? dot + 1 : ntk_config_keys[i].name);
      if (i > 0 && !strstr(text, leaf)) fail_msg("%s missing in:\n%s", leaf, text);
    }
    const char *q = write_yaml(text);
    free(text);
    assert_int_equal(ntk_config_load(q, &b), NTK_OK);
    const char *diff = ntk_config_diff(&a, &b);
    if (diff) fail_msg("round trip changed %s", diff);
  }
  /* and the defaults */
  char *text = ntk_config_to_yaml(&d);
  const char *q = write_yaml(text);
  free(text);
  assert_int_equal(ntk_config_load(q, &b), NTK_OK);
  assert_null(ntk_config_diff(&d, &b));
  /* diff does notice a change */
  b.residual.power = 1.0000000000000002;
  assert_string_equal(ntk_config_diff(&d, &b), "residual.power");
}

/* The shape rule of MODEL.md, written once (ntk_config_input_dim, ntk_config_width). */
static void test_shapes(void **state) {
  (void)state;
  ntk_config c;
  ntk_config_defaults(&c);
  c.model.width = 300;
  c.fourier.features = 16;
  c.fourier.project = 1;
  assert_int_equal(ntk_config_input_dim(&c, 5), 32);
  assert_int_equal(ntk_config_width(&c, 5), 300);
  c.fourier.project = 0; /* h0 = phi(x) */
  assert_int_equal(ntk_config_width(&c, 5), 32);
  c.fourier.features = 0; /* raw inputs */
  assert_int_equal(ntk_config_input_dim(&c, 5), 5);
  assert_int_equal(ntk_config_width(&c, 5), 5);
  c.fourier.project = 1;
  assert_int_equal(ntk_config_width(&c, 5), 300);
}

/* The stored configuration (a result file's `config` attribute) is read by the same
 * loader: every key back, what a text lacks or this build refuses reported as not given. */
static void test_from_text(void **state) {
  (void)state;
  static ntk_config a, b;
  unsigned char given[NTK_CONFIG_MAX_KEYS];
  assert_int_equal(ntk_config_load(write_yaml(all_changed_yaml), &a), NTK_OK);
  char *text = ntk_config_to_yaml(&a);
  assert_non_null(text);
  assert_int_equal(ntk_config_from_text(text, "stored", &b, given), NTK_OK);
  free(text);
  const char *diff = ntk_config_diff(&a, &b);
  if (diff) fail_msg("stored text changed %s", diff);
  for (int i = 0; i < ntk_config_nkeys; ++i)
    if (!given[i]) fail_msg("%s not marked given", ntk_config_keys[i].name);
  assert_string_equal(b.source, "stored");

  /* another version's text: an unknown key and a refused value are skipped, a missing key
   * keeps its default and is not given */
  assert_int_equal(ntk_config_from_text("model:\n  width: 96\n  shape: tall\n"
                                        "  activation: swish\nfuture:\n  knob: 3\n",
                                        "old", &b, given),
                   NTK_OK);
  const ntk_config_key *w = ntk_config_find_key("model.width");
  const ntk_config_key *act = ntk_config_find_key("model.activation");
  const ntk_config_key *depth = ntk_config_find_key("model.depth");
  assert_int_equal(b.model.width, 96);
  assert_true(given[w - ntk_config_keys]);
  assert_false(given[act - ntk_config_keys]);
  assert_false(given[depth - ntk_config_keys]);
  ntk_config d;
  ntk_config_defaults(&d);
  assert_int_equal(b.model.activation, d.model.activation);
  assert_int_equal(b.model.depth, d.model.depth);

  /* not YAML, or not a mapping: one line naming the label */
  ntk_err_clear();
  assert_one_line_input_error(ntk_config_from_text("model: [1, 2\n", "stored", &b, given));
  assert_contains(ntk_err_message(), "stored:");
  ntk_err_clear();
  assert_one_line_input_error(ntk_config_from_text("- 1\n- 2\n", "stored", &b, NULL));
  ntk_err_clear();
}

/* Nesting is bounded before libyaml builds a document (its cost grows with the square of
 * the depth: 200000 levels took minutes).  Refused: one line naming file and line. */
static void test_nesting_bound(void **state) {
  (void)state;
  /* the deepest a configuration uses, with room to spare, still loads */
  ntk_config c;
  assert_int_equal(ntk_config_load(write_yaml("depth:\n  mask: []\ndata:\n  classes: [1, 2]\n"), &c),
                   NTK_OK);
  const int deep = 200000;
  char *flow = malloc(2 * (size_t)deep + 64);
  assert_non_null(flow);
  int o = sprintf(flow, "model:\n  width: ");
  for (int i = 0; i < deep; ++i) flow[o++] = '[';
  for (int i = 0; i < deep; ++i) flow[o++] = ']';
  strcpy(flow + o, "\n");
  char lim[64];
  snprintf(lim, sizeof lim, "nested more than %d levels", NTK_CONFIG_MAX_DEPTH);
  expect_load_error(flow, 2, lim, NULL);
  /* the same bound for a stored text */
  assert_one_line_input_error(ntk_config_from_text(flow, "stored", &c, NULL));
  assert_contains(ntk_err_message(), lim);
  ntk_err_clear();
  free(flow);
  /* block style: the line of the first level too deep */
  char block[4096] = "";
  for (int i = 0, n = 0; i < NTK_CONFIG_MAX_DEPTH + 4; ++i)
    n += snprintf(block + n, sizeof block - (size_t)n, "%*sk%d:\n", 2 * i, "", i);
  expect_load_error(block, NTK_CONFIG_MAX_DEPTH + 1, lim, NULL);
  /* exactly at the bound the nesting is allowed (and the key then unknown) */
  char at[4096] = "";
  for (int i = 0, n = 0; i < NTK_CONFIG_MAX_DEPTH - 1; ++i)
    n += snprintf(at + n, sizeof at - (size_t)n, "%*sk%d:%s\n", 2 * i, "", i,
                  i == NTK_CONFIG_MAX_DEPTH - 2 ? " {a: 1}" : "");
  expect_load_error(at, 1, "unknown key 'k0'", NULL);
}

/* ------------------------------------------------------------ schedules -- */

static void test_schedules(void **state) {
  (void)state;
  ntk_config c;
  ntk_config_defaults(&c);
  c.model.depth = 4;
  c.residual.alpha = 1.0;
  c.residual.schedule = NTK_ALPHA_INV_SQRT_DEPTH;
  for (int l = 1; l <= 4; ++l) assert_near(ntk_config_alpha(&c, l), 0.5, 1e-15);
  c.residual.alpha = 3.0;
  c.residual.schedule = NTK_ALPHA_INV_DEPTH;
  assert_near(ntk_config_alpha(&c, 2), 0.75, 1e-15);
  c.residual.schedule = NTK_ALPHA_CONSTANT;
  assert_near(ntk_config_alpha(&c, 3), 3.0, 0);
  c.residual.alpha = 2.0;
  c.residual.schedule = NTK_ALPHA_POWER;
  c.residual.power = 0.5;
  assert_near(ntk_config_alpha(&c, 1), 2.0, 1e-15);
  assert_near(ntk_config_alpha(&c, 4), 1.0, 1e-15);
  assert_near(ntk_config_alpha(&c, 3), 2.0 / sqrt(3.0), 1e-15);
  c.residual.power = 2.0;
  assert_near(ntk_config_alpha(&c, 2), 0.5, 1e-15);
  assert_true(isnan(ntk_config_alpha(&c, 0)));
  assert_true(isnan(ntk_config_alpha(&c, 5)));

  c.depth.survival = 0.5;
  c.depth.schedule = NTK_SURVIVAL_UNIFORM;
  for (int l = 1; l <= 4; ++l) assert_near(ntk_config_survival(&c, l), 0.5, 0);
  c.depth.schedule = NTK_SURVIVAL_LINEAR; /* 1 - (l/4)(1 - 0.5) */
  assert_near(ntk_config_survival(&c, 1), 0.875, 1e-15);
  assert_near(ntk_config_survival(&c, 2), 0.75, 1e-15);
  assert_near(ntk_config_survival(&c, 3), 0.625, 1e-15);
  assert_near(ntk_config_survival(&c, 4), 0.5, 1e-15);
  c.depth.survival = 1.0;
  assert_near(ntk_config_survival(&c, 3), 1.0, 0);
  assert_true(isnan(ntk_config_survival(&c, 0)));

  c.fourier.features = 64;
  assert_int_equal(ntk_config_input_dim(&c, 3), 128);
  c.fourier.features = 0;
  assert_int_equal(ntk_config_input_dim(&c, 3), 3);

  assert_string_equal(ntk_config_enum_name("model.activation", NTK_ACT_GELU), "gelu");
  assert_string_equal(ntk_config_enum_name("model.activation", NTK_ACT_IDENTITY), "identity");
  assert_string_equal(ntk_config_enum_name("residual.schedule", NTK_ALPHA_INV_SQRT_DEPTH),
                      "inv_sqrt_depth");
  assert_string_equal(ntk_config_enum_name("data.source", NTK_DATA_HDF5), "hdf5");
  assert_string_equal(ntk_config_enum_name("ntk.network", NTK_NETWORK_MASK_AVERAGE),
                      "mask_average");
  assert_string_equal(ntk_config_enum_name("analytic.fourier", NTK_FOURIER_LIMIT), "limit");
  assert_string_equal(ntk_config_enum_name("depth.schedule", NTK_SURVIVAL_LINEAR), "linear");
  assert_string_equal(ntk_config_enum_name("ntk.method", NTK_METHOD_JACOBIAN), "jacobian");
  assert_string_equal(ntk_config_enum_name("model.activation", NTK_ACT_COUNT), "?");
  assert_string_equal(ntk_config_enum_name("model.activation", NTK_ACT_SIGN), "sign");
  assert_string_equal(ntk_config_enum_name("model.width", 0), "?");
}

/* -------------------------------------------------- docs and example configs -- */

static const char *source_dir(void) {
  const char *s = getenv("NTK_SOURCE_DIR");
  return s ? s : NTK_TEST_SOURCE_DIR;
}

static void test_docs_list_every_key(void **state) {
  (void)state;
  char path[1024];
  snprintf(path, sizeof path, "%s/docs/CONFIG.md", source_dir());
  FILE *f = fopen(path, "r");
  if (!f) fail_msg("cannot open %s", path);
  static char text[1 << 17];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  for (int i = 0; i < ntk_config_nkeys; ++i) {
    char row[128];
    snprintf(row, sizeof row, "| `%s` |", ntk_config_keys[i].name);
    if (!strstr(text, row)) fail_msg("docs/CONFIG.md has no row %s", row);
  }
}

static void test_example_configs(void **state) {
  (void)state;
  char pattern[1024];
  snprintf(pattern, sizeof pattern, "%s/configs/*.yaml", source_dir());
  glob_t g;
  assert_int_equal(glob(pattern, 0, NULL, &g), 0);
  int quick = 0;
  for (size_t i = 0; i < g.gl_pathc; ++i) {
    ntk_config c;
    ntk_err_clear();
    if (ntk_config_load(g.gl_pathv[i], &c) != NTK_OK || ntk_config_validate(&c) != NTK_OK)
      fail_msg("%s: %s", g.gl_pathv[i], ntk_err_message());
    if (strstr(g.gl_pathv[i], "/reference.yaml")) {
      /* the commented listing of the defaults must not drift from the table */
      ntk_config d;
      ntk_config_defaults(&d);
      ntk_config_validate(&d);
      const char *diff = ntk_config_diff(&c, &d);
      if (diff) fail_msg("configs/reference.yaml: %s differs from the table's default", diff);
    }
    if (strstr(g.gl_pathv[i], "/quickstart.yaml")) {
      quick = 1;
      assert_int_equal(c.data.source, NTK_DATA_SYNTHETIC_1D);
      assert_int_equal(c.data.n_train, 256);
      assert_int_equal(c.model.width, 512);
      assert_int_equal(c.model.depth, 4);
      assert_int_equal(c.fourier.features, 64);
    }
  }
  globfree(&g);
  assert_true(quick);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  snprintf(tmpdir, sizeof tmpdir, "/tmp/ntk_test_config_XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_table, setup),
      cmocka_unit_test_setup(test_defaults, setup),
      cmocka_unit_test_setup(test_load_valid, setup),
      cmocka_unit_test_setup(test_empty_files, setup),
      cmocka_unit_test_setup(test_load_errors, setup),
      cmocka_unit_test_setup(test_suggest, setup),
      cmocka_unit_test_setup(test_set, setup),
      cmocka_unit_test_setup(test_validate, setup),
      cmocka_unit_test_setup(test_round_trip, setup),
      cmocka_unit_test_setup(test_shapes, setup),
      cmocka_unit_test_setup(test_from_text, setup),
      cmocka_unit_test_setup(test_nesting_bound, setup),
      cmocka_unit_test_setup(test_schedules, setup),
      cmocka_unit_test_setup(test_docs_list_every_key, setup),
      cmocka_unit_test_setup(test_example_configs, setup),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  for (int i = 0; i < nfiles; ++i) {
    char p[512];
    snprintf(p, sizeof p, "%s/c%03d.yaml", tmpdir, i);
    unlink(p);
  }
  rmdir(tmpdir);
  MPI_Finalize();
  return failed ? 1 : 0;
}
