/* ntk_config: the key table, the YAML loader, --set overrides, validation and the
 * effective-config printer.  Every value, default included, goes through one parser
 * (set_value), so the defaults in the table are checked by the same rules as user input. */
#include "ntk_config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "ntk_error.h"

#define POS NTK_KEY_MIN_POSITIVE
#define IMAX ((double)INT_MAX)
#define DMAX DBL_MAX
#define MSG 768

/* ---------------------------------------------------------------- the table -- */

static const char *const act_choices[] = {"relu",     "erf",  "tanh",     "gelu",
                                          "identity", "leaky_relu", "abs", "sin",
                                          "cos",      "softplus",   "silu", "sigmoid",
                                          "sign",     NULL};
static const char *const alpha_choices[] = {"constant", "inv_sqrt_depth", "inv_depth", "power",
                                            NULL};
static const char *const surv_choices[] = {"uniform", "linear", NULL};
static const char *const source_choices[] = {"synthetic_1d",  "teacher", "sphere",
                                             "fashion_mnist", "hdf5",    NULL};
static const char *const method_choices[] = {"structured", "jacobian", "matrix_free", NULL};
static const char *const network_choices[] = {"eval", "mask", "mask_average", NULL};
/* The eigensolver module owns the solvers; this list must name the rows of its table. */
static const char *const eig_choices[] = {"auto", "pdsyevr", "pdsyevd", "pdsyev", "elpa2", NULL};
/* The same for the matrix-free solver's table (ntk_eigs; test_eigs compares the two). */
static const char *const eigs_choices[] = {"krylovschur", "lanczos", "arnoldi", NULL};
static const char *const fourier_choices[] = {"exact", "limit", NULL};
static const char *const optimizer_choices[] = {"gd", "sgd", NULL};
static const char *const measure_choices[] = {"log", "every", "list", NULL};

_Static_assert(NTK_ACT_SIGN == 12 && NTK_ALPHA_POWER == 3 && NTK_SURVIVAL_LINEAR == 1 &&
                   NTK_DATA_HDF5 == 4 && NTK_METHOD_MATRIX_FREE == 2 &&
                   NTK_NETWORK_MASK_AVERAGE == 2 && NTK_FOURIER_LIMIT == 1 &&
                   NTK_OPT_SGD == 1 && NTK_MEASURE_LIST == 2,
               "enum order must match the choices lists");

#define OFF(f) offsetof(ntk_config, f)
#define SZ(f) sizeof(((ntk_config *)0)->f)
#define K_INT(n, f, d, lo, hi, doc) \
  { n, NTK_KEY_INT, OFF(f), 0, d, lo, hi, NULL, doc }
#define K_DBL(n, f, d, lo, hi, doc) \
  { n, NTK_KEY_DOUBLE, OFF(f), 0, d, lo, hi, NULL, doc }
#define K_BOOL(n, f, d, doc) \
  { n, NTK_KEY_BOOL, OFF(f), 0, d, 0, 1, NULL, doc }
#define K_ENUM(n, f, d, ch, doc) \
  { n, NTK_KEY_ENUM, OFF(f), 0, d, 0, 0, ch, doc }
/* strings: min/max are the allowed length; max leaves room for the terminator */
#define K_STR(n, f, d, minlen, ch, doc) \
  { n, NTK_KEY_STRING, OFF(f), 0, d, minlen, (double)(SZ(f) - 1), ch, doc }
#define K_LIST(n, f, lenf, lo, hi, doc) \
  { n, NTK_KEY_INT_LIST, OFF(f), OFF(lenf), "[]", lo, hi, NULL, doc }

const ntk_config_key ntk_config_keys[] = {
    {"seed", NTK_KEY_UINT64, OFF(seed), 0, "0", 0, 18446744073709551615.0, NULL,
     "seed of the counter-based generator (parameters, data, masks): same seed, same run "
     "at any rank count"},
    K_INT("verbosity", verbosity, "1", 0, 2, "0 quiet, 1 progress, 2 debug"),

    K_INT("model.width", model.width, "512", 1, IMAX, "hidden width n"),
    K_INT("model.depth", model.depth, "4", 1, IMAX, "number of residual blocks L"),
    K_ENUM("model.activation", model.activation, "relu", act_choices,
           "activation sigma (gelu is exact, x*Phi(x); silu = x*sigmoid(x); sign has "
           "derivative 0)"),
    K_DBL("model.leaky_slope", model.leaky_slope, "0.01", -1, 1,
          "leaky_relu: sigma(x) = x for x > 0, leaky_slope * x otherwise"),
    K_DBL("model.weight_std", model.weight_std, "1.0", 0, DMAX,
          "sigma_w: weights enter the forward pass as sigma_w/sqrt(fan_in) * W, W ~ N(0,1)"),
    K_DBL("model.bias_std", model.bias_std, "0.1", 0, DMAX,
          "sigma_b: biases enter the forward pass as sigma_b * b, b ~ N(0,1)"),

    /* dim phi(x) = 2m is a matrix dimension (an int for ScaLAPACK and MPI) */
    K_INT("fourier.features", fourier.features, "64", 0, (double)(INT_MAX / 2),
          "number m of Fourier frequencies; 0 = raw inputs, phi(x) = x (dim phi = 2m)"),
    K_DBL("fourier.scale", fourier.scale, "1.0", 0, DMAX,
          "frequency scale s in phi(x) = [sin(2 pi s G x); cos(2 pi s G x)]"),
    K_BOOL("fourier.trainable", fourier.trainable, "false",
           "train the frequency matrix G (fixed at its N(0,1) draw otherwise)"),
    K_BOOL("fourier.project", fourier.project, "true",
           "input layer W0 phi(x) + b0; false uses h0 = phi(x), so width must be dim phi"),

    K_DBL("residual.alpha", residual.alpha, "1.0", 0, DMAX, "block scale a"),
    K_ENUM("residual.schedule", residual.schedule, "inv_sqrt_depth", alpha_choices,
           "alpha_l: constant a, inv_sqrt_depth a/sqrt(L), inv_depth a/L, power a*l^-gamma"),
    K_DBL("residual.power", residual.power, "1.0", 0, DMAX, "exponent gamma of the power schedule"),
    K_BOOL("residual.skip", residual.skip, "true",
           "residual connections; false gives the plain-MLP baseline h^l = sigma(z^l)"),

    K_DBL("depth.survival", depth.survival, "1.0", POS, 1,
          "stochastic depth survival probability p (1 = off)"),
    K_ENUM("depth.schedule", depth.schedule, "uniform", surv_choices,
           "p_l: uniform p, linear 1 - (l/L)(1 - p)"),
    K_LIST("depth.mask", depth.mask, depth.mask_len, 0, 1,
           "explicit 0/1 block mask (length model.depth) for ntk.network: mask; "
           "empty = the step-0 mask drawn from the generator"),

    K_ENUM("data.source", data.source, "synthetic_1d", source_choices, "where the data comes from"),
    K_INT("data.n_train", data.n_train, "256", 0, IMAX,
          "training set size N (hdf5: 0 = all rows of x; other sources need >= 1)"),
    K_INT("data.n_test", data.n_test, "0", 0, IMAX,
          "test set size, 0 = no test set (hdf5: 0 = all rows of x_test, if present)"),
    K_INT("data.dim", data.dim, "1", 1, IMAX,
          "input dimension d of the teacher and sphere sources (synthetic_1d is 1)"),
    K_INT("data.outputs", data.outputs, "1", 1, IMAX, "number of outputs k of the teacher source"),
    K_DBL("data.noise", data.noise, "0.0", 0, DMAX, "label noise std of the synthetic sources"),
    K_STR("data.path", data.path, "", 0, NULL,
          "fashion_mnist folder (empty = " NTK_FASHION_MNIST_DIR ") or the HDF5 file "
          "with datasets x (N, d) and y (N, k)"),
    K_LIST("data.classes", data.classes, data.n_classes, 0, 9,
           "fashion_mnist class subset, distinct labels 0..9 (empty = all ten)"),
    K_BOOL("data.standardize", data.standardize, "true",
           "scale inputs to zero mean and unit variance per feature (training statistics; "
           "fashion_mnist only, hdf5 files are read as they are)"),

    K_ENUM("ntk.method", ntk.method, "structured", method_choices,
           "structured: per-layer Gram products; jacobian: explicit Jacobian (reference); "
           "matrix_free: no N x N kernel, the top ntk.top_k eigenpairs from products Theta v "
           "(SLEPc; metrics that need the whole kernel are NaN, docs/METRICS.md)"),
    K_ENUM("ntk.network", ntk.network, "eval", network_choices,
           "which network's NTK: eval (xi_l = p_l), mask (training mask), mask_average"),
    K_INT("ntk.mask_samples", ntk.mask_samples, "16", 1, IMAX,
          "number of masks averaged for ntk.network: mask_average"),
    K_INT("ntk.top_k", ntk.top_k, "0", 0, IMAX,
          "eigenvalues kept per measurement (0 = all N; ntk.method matrix_free needs >= 1)"),
    K_DBL("ntk.chunk_mb", ntk.chunk_mb, "256", POS, DMAX,
          "jacobian method: memory bound in MiB per parameter chunk and rank"),

    K_STR("eigensolver.type", eigensolver.type, "auto", 1, eig_choices,
          "eigensolver: auto (by size: elpa2 for the top K from N = 4096 and for all values "
          "from N = 2048, pdsyevd for all vectors from N = 2048, else pdsyevr), pdsyevr (ScaLAPACK MRRR, top K only), pdsyevd (divide "
          "and conquer), pdsyev (QR, reference), elpa2 (ELPA 2-stage)"),
    K_STR("eigensolver.matrix_free", eigensolver.matrix_free, "krylovschur", 1, eigs_choices,
          "ntk.method matrix_free: SLEPc method, krylovschur (Krylov-Schur, thick restart), "
          "lanczos (explicit restart, full reorthogonalisation), arnoldi (reference)"),
    K_DBL("eigensolver.tol", eigensolver.tol, "1e-10", POS, 0.1,
          "ntk.method matrix_free: a pair is converged when the norm of Theta u - lambda u "
          "is at most tol * lambda (eigenvalue errors are about tol^2 lambda_max / gap)"),
    K_INT("eigensolver.max_it", eigensolver.max_it, "0", 0, IMAX,
          "ntk.method matrix_free: restarts allowed; 0 = SLEPc's default max(100, 2N/ncv)"),
    K_INT("eigensolver.ncv", eigensolver.ncv, "0", 0, IMAX,
          "ntk.method matrix_free: Krylov basis size (> ntk.top_k, <= N); 0 = SLEPc's "
          "max(2K, K + 15)"),
    K_INT("eigensolver.frobenius_probes", eigensolver.frobenius_probes, "0", 0, 65536,
          "ntk.method matrix_free: Rademacher probes of a Hutchinson estimate of ||Theta||_F "
          "(one product each, the top K eigenpairs deflated), which also gives "
          "kernel_target_alignment and effective_rank with a standard error; 0 = those are NaN"),

    K_INT("grid.rows", grid.rows, "0", 0, IMAX,
          "process grid rows (split samples); 0 = choose from the rank count"),
    K_INT("grid.cols", grid.cols, "0", 0, IMAX,
          "process grid columns (split neurons); 0 = choose from the rank count"),
    K_INT("grid.block_size", grid.block_size, "0", 0, IMAX,
          "block-cyclic block size, both dimensions; 0 = choose: 64, or, when that leaves a "
          "process row or column without a block, the even split of the samples or neurons"),

    K_STR("output.path", output.path, "ntkspec.h5", 1, NULL, "HDF5 output file"),
    K_BOOL("output.save_data", output.save_data, "true", "write /data (the inputs and targets)"),
    K_BOOL("output.save_params", output.save_params, "false", "write /params/step_<t>"),
    K_BOOL("output.save_ntk", output.save_ntk, "false",
           "write the full N x N kernel at each measurement (/trajectory/ntk)"),
    K_BOOL("output.save_eigenvectors", output.save_eigenvectors, "false",
           "write the top eigenvectors of the kernel"),
    K_BOOL("output.overwrite", output.overwrite, "false",
           "replace an existing output file (refused otherwise)"),

    K_BOOL("analytic.enabled", analytic.enabled, "false",
           "also compute the infinite-width NNGP and NTK (/analytic)"),
    K_ENUM("analytic.fourier", analytic.fourier, "exact", fourier_choices,
           "input kernel: exact (same G as the network) or limit (m -> infinity Gaussian)"),
    K_INT("analytic.quadrature_order", analytic.quadrature_order, "0", 0, 1024,
          "0: the Gaussian expectations without a closed form are error-controlled (1e-14 "
          "relative, estimate in /analytic); > 0: a fixed Gauss-Hermite rule of this many "
          "points per dimension, error not estimated"),
    K_INT("analytic.enumerate_depth", analytic.enumerate_depth, "10", 0, 20,
          "enumerate all 2^L masks up to this depth, Monte Carlo beyond"),
    K_INT("analytic.mask_samples", analytic.mask_samples, "256", 1, IMAX,
          "Monte Carlo masks beyond analytic.enumerate_depth"),

    K_INT("train.steps", train.steps, "0", 0, IMAX,
          "training steps T; 0 = no training (the trajectory is step 0 alone)"),
    K_ENUM("train.optimizer", train.optimizer, "gd", optimizer_choices,
           "gd: full-batch gradient descent; sgd: minibatch SGD (train.batch_size samples a step)"),
    K_INT("train.batch_size", train.batch_size, "0", 0, IMAX,
          "sgd: samples per step, 1 .. data.n_train (gd: leave at 0)"),
    K_DBL("train.lr", train.lr, "0.0", 0, DMAX,
          "learning rate eta; 0 = eta from train.lr_scale"),
    K_DBL("train.lr_scale", train.lr_scale, "0.5", POS, DMAX,
          "eta = lr_scale * 2N / lambda_max(Theta_0) (GD on the linearised model is stable "
          "below 1) when train.lr is 0"),
    K_ENUM("train.measure", train.measure, "log", measure_choices,
           "measurement steps (always with 0 and T): log (train.measure_points log-spaced), "
           "every (train.measure_every), list (train.measure_steps)"),
    K_INT("train.measure_every", train.measure_every, "50", 1, IMAX,
          "measure: every: measure at multiples of this"),
    K_INT("train.measure_points", train.measure_points, "20", 1, IMAX,
          "measure: log: number of log-spaced steps between 1 and T"),
    K_LIST("train.measure_steps", train.measure_steps, train.measure_steps_len, 0, IMAX,
           "measure: list: the steps to measure at, each <= train.steps"),
    K_DBL("train.divergence_factor", train.divergence_factor, "1e6", 1, DMAX,
          "stop with status diverged when the train loss exceeds this times the initial loss "
          "(NaN or Inf always does)"),
    K_INT("train.checkpoint_every", train.checkpoint_every, "0", 0, IMAX,
          "write a checkpoint every this many steps (0 = only on SIGTERM/SIGINT/SIGUSR1)"),
    K_STR("train.checkpoint", train.checkpoint, "", 0, NULL,
          "checkpoint file (empty = output.path + \".ckpt\")"),

    K_DBL("memory.limit_mb", memory.limit_mb, "0.0", 0, DMAX,
          "memory per rank in MiB that a run's estimated peak must fit in, checked before "
          "anything is computed; 0 = automatic: SLURM_MEM_PER_NODE / ranks on the node, else "
          "SLURM_MEM_PER_CPU x SLURM_CPUS_PER_TASK, else the node's memory (or its cgroup "
          "limit) / ranks on the node"),
};

#define NKEYS ((int)(sizeof ntk_config_keys / sizeof ntk_config_keys[0]))
const int ntk_config_nkeys = NKEYS;
_Static_assert(NKEYS <= NTK_CONFIG_MAX_KEYS, "raise NTK_CONFIG_MAX_KEYS");

/* ---------------------------------------------------- where each value came from -- */

/* Cross-key errors in ntk_config_validate name the line of the key that is wrong.  The
 * struct has no room for that, so the most recent load/--set remembers it here, tied to
 * the file name; it only ever affects messages. */
static char origin_src[NTK_PATH_MAX];
static int origin_line[NKEYS]; /* > 0: line in origin_src */
static int origin_cli[NKEYS];  /* set by --set */

static int key_index(const ntk_config_key *k) { return (int)(k - ntk_config_keys); }

/* ----------------------------------------------------------------- helpers -- */

const ntk_config_key *ntk_config_find_key(const char *name) {
  if (!name) return NULL;
  for (int i = 0; i < NKEYS; ++i)
    if (strcmp(ntk_config_keys[i].name, name) == 0) return &ntk_config_keys[i];
  return NULL;
}

/* a section is a proper dotted prefix of some key ("model" for "model.width") */
static int is_section(const char *name) {
  size_t n = strlen(name);
  if (n == 0) return 0;
  for (int i = 0; i < NKEYS; ++i)
    if (strncmp(ntk_config_keys[i].name, name, n) == 0 && ntk_config_keys[i].name[n] == '.')
      return 1;
  return 0;
}

static void *field(ntk_config *cfg, size_t off) { return (char *)cfg + off; }
static const void *cfield(const ntk_config *cfg, size_t off) { return (const char *)cfg + off; }

static int count_choices(const char *const *ch) {
  int n = 0;
  while (ch && ch[n]) ++n;
  return n;
}

/* Optimal-string-alignment distance: Levenshtein plus adjacent transpositions, since
 * "widht" for "width" is the typical typo and should cost 1. */
static int edit_distance(const char *a, const char *b) {
  enum { M = 96 };
  int la = (int)strlen(a), lb = (int)strlen(b);
  if (la >= M || lb >= M) return INT_MAX;
  static int d[M][M];
  for (int i = 0; i <= la; ++i) d[i][0] = i;
  for (int j = 0; j <= lb; ++j) d[0][j] = j;
  for (int i = 1; i <= la; ++i)
    for (int j = 1; j <= lb; ++j) {
      int cost = a[i - 1] != b[j - 1];
      int v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  return d[la][lb];
}

static const char *last_component(const char *s) {
  const char *dot = strrchr(s, '.');
  return dot ? dot + 1 : s;
}

const char *ntk_config_suggest(const char *name) {
  if (!name || !*name) return NULL;
  /* candidates: every key, and every section name */
  static char sections[NKEYS][64];
  int nsec = 0;
  for (int i = 0; i < NKEYS; ++i) {
    const char *dot = strchr(ntk_config_keys[i].name, '.');
    if (!dot) continue;
    size_t n = (size_t)(dot - ntk_config_keys[i].name);
    if (n >= sizeof sections[0]) continue;
    int seen = 0;
    for (int j = 0; j < nsec; ++j)
      if (strlen(sections[j]) == n && strncmp(sections[j], ntk_config_keys[i].name, n) == 0)
        seen = 1;
    if (!seen) {
      memcpy(sections[nsec], ntk_config_keys[i].name, n);
      sections[nsec++][n] = '\0';
    }
  }
  size_t len = strlen(name);
  int limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
  const char *best = NULL;
  int bestd = INT_MAX;
  for (int i = 0; i < NKEYS; ++i) {
    int dd = edit_distance(name, ntk_config_keys[i].name);
    if (dd < bestd) bestd = dd, best = ntk_config_keys[i].name;
  }
  for (int j = 0; j < nsec; ++j) {
    int dd = edit_distance(name, sections[j]);
    if (dd < bestd) bestd = dd, best = sections[j];
  }
  if (bestd <= limit) return best;
  /* the right key in the wrong section, or a section forgotten ("width" -> model.width) */
  const char *tail = last_component(name);
  for (int i = 0; i < NKEYS; ++i)
    if (strcmp(tail, last_component(ntk_config_keys[i].name)) == 0) return ntk_config_keys[i].name;
  return NULL;
}

static void fmt_num(char *buf, size_t n, ntk_key_type t, double v) {
  if (t == NTK_KEY_DOUBLE)
    snprintf(buf, n, "%g", v);
  else
    snprintf(buf, n, "%.0f", v);
}

static void range_text(ntk_key_type t, double lo, double hi, char *buf, size_t n) {
  char a[40], b[40];
  double top = t == NTK_KEY_DOUBLE ? DMAX : IMAX;
  fmt_num(a, sizeof a, t, lo);
  fmt_num(b, sizeof b, t, hi);
  if (lo == POS && hi >= top)
    snprintf(buf, n, "> 0");
  else if (lo == POS)
    snprintf(buf, n, "> 0 and <= %s", b);
  else if (hi >= top)
    snprintf(buf, n, ">= %s", a);
  else
    snprintf(buf, n, "%s .. %s", a, b);
}

static void join_choices(const char *const *ch, char *buf, size_t n) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; ch && ch[i] && used < n; ++i)
    used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "", ch[i]);
}

void ntk_config_allowed(const ntk_config_key *k, char *buf, size_t n) {
  if (!buf || n == 0) return;
  char r[96];
  switch (k->type) {
    case NTK_KEY_INT:
    case NTK_KEY_DOUBLE:
      range_text(k->type, k->min, k->max, buf, n);
      break;
    case NTK_KEY_UINT64:
      snprintf(buf, n, "0 .. 18446744073709551615");
      break;
    case NTK_KEY_BOOL:
      snprintf(buf, n, "true, false, yes, no, on, off, 1, 0");
      break;
    case NTK_KEY_ENUM:
      join_choices(k->choices, buf, n);
      break;
    case NTK_KEY_STRING:
      if (k->choices)
        join_choices(k->choices, buf, n);
      else if (k->min >= 1)
        snprintf(buf, n, "non-empty text, at most %.0f characters", k->max);
      else
        snprintf(buf, n, "text, at most %.0f characters", k->max);
      break;
    case NTK_KEY_INT_LIST:
      range_text(NTK_KEY_INT, k->min, k->max, r, sizeof r);
      snprintf(buf, n, "list of at most %d integers, each %s", NTK_MAX_LIST, r);
      break;
  }
}

static const char *type_word(const ntk_config_key *k) {
  switch (k->type) {
    case NTK_KEY_INT:
    case NTK_KEY_UINT64:
      return "an integer";
    case NTK_KEY_DOUBLE:
      return "a number";
    case NTK_KEY_BOOL:
      return "a boolean";
    case NTK_KEY_ENUM:
      return "one name";
    case NTK_KEY_STRING:
      return "a string";
    case NTK_KEY_INT_LIST:
      return "a list of integers";
  }
  return "a value";
}

/* ------------------------------------------------------------ value parsing -- */

/* Strict integer: optional sign, decimal digits only, no trailing text. */
static int parse_ll(const char *s, long long *v) {
  const char *p = s;
  if (*p == '+' || *p == '-') ++p;
  if (!isdigit((unsigned char)*p)) return -1;
  for (const char *q = p; *q; ++q)
    if (!isdigit((unsigned char)*q)) return -1;
  errno = 0;
  char *end;
  long long r = strtoll(s, &end, 10);
  if (errno == ERANGE) return -2;
  *v = r;
  return 0;
}

/* Decimal floating point only: rejects nan, inf, hex floats and trailing text. */
static int parse_double(const char *s, double *v) {
  if (!*s) return -1;
  for (const char *q = s; *q; ++q)
    if (!strchr("0123456789+-.eE", *q)) return -1;
  errno = 0;
  char *end;
  double r = strtod(s, &end);
  if (end == s || *end) return -1;
  if (!isfinite(r)) return -2;
  *v = r;
  return 0;
}

/* ".nan", "NaN", "-inf", ".Inf", "infinity": worth a clearer message than "not a number" */
static int looks_nonfinite(const char *s) {
  char low[16];
  size_t i = 0;
  for (; s[i] && i + 1 < sizeof low; ++i) low[i] = (char)tolower((unsigned char)s[i]);
  low[i] = '\0';
  return strstr(low, "nan") || strstr(low, "inf");
}

static int parse_bool(const char *s, int *v) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (int i = 0; i < 4; ++i) {
    if (strcasecmp(s, yes[i]) == 0) return *v = 1, 0;
    if (strcasecmp(s, no[i]) == 0) return *v = 0, 0;
  }
  return -1;
}

/* why receives "what is wrong (allowed: ...)" */
static int bad(char *why, size_t n, const ntk_config_key *k, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(char *why, size_t n, const ntk_config_key *k, const char *fmt, ...) {
  char allowed[256];
  ntk_config_allowed(k, allowed, sizeof allowed);
  char what[MSG];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  snprintf(why, n, "%.500s (allowed: %.250s)", what, allowed);
  return -1;
}

static int parse_list_elem(const ntk_config_key *k, const char *s, int *out, char *why, size_t n) {
  long long v;
  int rc = parse_ll(s, &v);
  if (rc == -1) return bad(why, n, k, "expected an integer list element, got '%.80s'", s);
  if (rc == -2 || v < k->min || v > k->max)
    return bad(why, n, k, "list element %.80s is out of range", s);
  *out = (int)v;
  return 0;
}

/* One scalar (text, already unquoted).  is_null: YAML null (empty plain, ~, null). */
static int set_scalar(ntk_config *cfg, const ntk_config_key *k, const char *s, int is_null,
                      char *why, size_t n) {
  if (is_null && k->type != NTK_KEY_STRING && k->type != NTK_KEY_INT_LIST)
    return bad(why, n, k, "missing value, expected %s", type_word(k));
  switch (k->type) {
    case NTK_KEY_INT: {
      long long v;
      int rc = parse_ll(s, &v);
      if (rc == -1) return bad(why, n, k, "expected an integer, got '%.80s'", s);
      if (rc == -2 || v < k->min || v > k->max) return bad(why, n, k, "%.80s is out of range", s);
      *(int *)field(cfg, k->offset) = (int)v;
      return 0;
    }
    case NTK_KEY_UINT64: {
      const char *p = s[0] == '+' ? s + 1 : s;
      if (!isdigit((unsigned char)*p)) return bad(why, n, k, "expected an integer, got '%.80s'", s);
      for (const char *q = p; *q; ++q)
        if (!isdigit((unsigned char)*q))
          return bad(why, n, k, "expected an integer, got '%.80s'", s);
      errno = 0;
      unsigned long long v = strtoull(p, NULL, 10);
      if (errno == ERANGE) return bad(why, n, k, "%.80s is out of range", s);
      *(uint64_t *)field(cfg, k->offset) = (uint64_t)v;
      return 0;
    }
    case NTK_KEY_DOUBLE: {
      double v;
      int rc = parse_double(s, &v);
      if (rc == -1) {
        if (looks_nonfinite(s)) return bad(why, n, k, "'%.80s' is not a finite number", s);
        return bad(why, n, k, "expected a number, got '%.80s'", s);
      }
      if (rc == -2) return bad(why, n, k, "'%.80s' is not a finite number", s);
      if (v < k->min || v > k->max || (k->min == POS && v <= 0))
        return bad(why, n, k, "%.80s is out of range", s);
      *(double *)field(cfg, k->offset) = v;
      return 0;
    }
    case NTK_KEY_BOOL: {
      int v;
      if (parse_bool(s, &v)) return bad(why, n, k, "expected a boolean, got '%.80s'", s);
      *(int *)field(cfg, k->offset) = v;
      return 0;
    }
    case NTK_KEY_ENUM: {
      for (int i = 0; k->choices[i]; ++i)
        if (strcmp(s, k->choices[i]) == 0) {
          *(int *)field(cfg, k->offset) = i;
          return 0;
        }
      return bad(why, n, k, "unknown value '%.80s'", s);
    }
    case NTK_KEY_STRING: {
      const char *v = is_null ? "" : s;
      size_t len = strlen(v);
      if ((double)len > k->max) return bad(why, n, k, "value is too long (%zu characters)", len);
      if ((double)len < k->min) return bad(why, n, k, "must not be empty");
      if (k->choices) {
        int ok = 0;
        for (int i = 0; k->choices[i]; ++i) ok |= strcmp(v, k->choices[i]) == 0;
        if (!ok) return bad(why, n, k, "unknown value '%.80s'", v);
      }
      memcpy(field(cfg, k->offset), v, len + 1);
      return 0;
    }
    case NTK_KEY_INT_LIST: {
      /* text form: "[1,0,1]", "1,0,1", "[]", "" or a single integer */
      char buf[1024];
      if (strlen(s) >= sizeof buf) return bad(why, n, k, "list text is too long");
      strcpy(buf, is_null ? "" : s);
      char *p = buf;
      while (isspace((unsigned char)*p)) ++p;
      size_t len = strlen(p);
      while (len && isspace((unsigned char)p[len - 1])) p[--len] = '\0';
      if (*p == '[') {
        if (len < 2 || p[len - 1] != ']')
          return bad(why, n, k, "expected a list like [1, 0, 1], got '%.80s'", s);
        p[len - 1] = '\0';
        ++p;
      }
      int vals[NTK_MAX_LIST], cnt = 0;
      char *q = p;
      while (isspace((unsigned char)*q)) ++q;
      if (*q) {
        for (char *tok = p;;) {
          char *comma = strchr(tok, ',');
          if (comma) *comma = '\0';
          while (isspace((unsigned char)*tok)) ++tok;
          size_t tl = strlen(tok);
          while (tl && isspace((unsigned char)tok[tl - 1])) tok[--tl] = '\0';
          if (cnt == NTK_MAX_LIST) return bad(why, n, k, "too many values");
          if (parse_list_elem(k, tok, &vals[cnt], why, n)) return -1;
          ++cnt;
          if (!comma) break;
          tok = comma + 1;
        }
      }
      memcpy(field(cfg, k->offset), vals, (size_t)cnt * sizeof(int));
      *(int *)field(cfg, k->len_offset) = cnt;
      return 0;
    }
  }
  return bad(why, n, k, "internal: unknown key type");
}

/* The table's defaults alone; the origins of the last load are the caller's business. */
static void set_defaults(ntk_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  snprintf(cfg->source, sizeof cfg->source, "<none>");
  char why[MSG];
  for (int i = 0; i < NKEYS; ++i)
    set_scalar(cfg, &ntk_config_keys[i], ntk_config_keys[i].def, 0, why, sizeof why);
}

void ntk_config_defaults(ntk_config *cfg) {
  set_defaults(cfg);
  origin_src[0] = '\0';
  memset(origin_line, 0, sizeof origin_line);
  memset(origin_cli, 0, sizeof origin_cli);
}

/* --------------------------------------------------------------- YAML loader -- */

typedef struct {
  const char *file;
  yaml_document_t *doc;
  ntk_config *cfg;
  int lenient;          /* a stored text: skip unknown keys and values this build refuses */
  int record_origin;    /* a user's file: remember lines for the validator's messages */
  unsigned char *given; /* NULL, or one flag per key: set from this text */
  int seen_line[NKEYS]; /* line where the key was set in this file, 0 = not yet */
} load_ctx;

static int is_null_scalar(const yaml_node_t *v) {
  if (v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
  const char *s = (const char *)v->data.scalar.value;
  return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static int line_of(const yaml_node_t *n) { return (int)n->start_mark.line + 1; }

static int load_err(load_ctx *c, const yaml_node_t *at, const char *key, const char *what) {
  if (key) return ntk_err_set(NTK_ERR_INPUT, "%s:%d: %s: %s", c->file, line_of(at), key, what);
  return ntk_err_set(NTK_ERR_INPUT, "%s:%d: %s", c->file, line_of(at), what);
}

/* A value of key k set from this text: where it came from. */
static void mark_set(load_ctx *c, int idx, const yaml_node_t *key_node) {
  if (c->record_origin) origin_line[idx] = line_of(key_node);
  if (c->given) c->given[idx] = 1;
}

static int load_value(load_ctx *c, const ntk_config_key *k, yaml_node_t *key_node, yaml_node_t *v) {
  char why[MSG];
  int idx = key_index(k);
  if (c->seen_line[idx])
    return ntk_err_set(NTK_ERR_INPUT, "%s:%d: %s: duplicate key (first given at line %d)", c->file,
                       line_of(key_node), k->name, c->seen_line[idx]);
  c->seen_line[idx] = line_of(key_node);
  if (v->type == YAML_MAPPING_NODE) {
    if (c->lenient) return NTK_OK;
    bad(why, sizeof why, k, "expected %s, got a mapping", type_word(k));
    return load_err(c, v, k->name, why);
  }
  if (v->type == YAML_SEQUENCE_NODE) {
    if (k->type != NTK_KEY_INT_LIST) {
      if (c->lenient) return NTK_OK;
      bad(why, sizeof why, k, "expected %s, got a sequence", type_word(k));
      return load_err(c, v, k->name, why);
    }
    int vals[NTK_MAX_LIST], cnt = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         ++it) {
      yaml_node_t *e = yaml_document_get_node(c->doc, *it);
      int rc = 0;
      if (e->type != YAML_SCALAR_NODE) {
        bad(why, sizeof why, k, "expected a list of integers, got a nested %s",
            e->type == YAML_MAPPING_NODE ? "mapping" : "sequence");
        rc = 1;
      } else if (cnt == NTK_MAX_LIST) {
        bad(why, sizeof why, k, "too many values");
        rc = 1;
      } else {
        rc = parse_list_elem(k, (const char *)e->data.scalar.value, &vals[cnt], why, sizeof why);
      }
      if (rc) return c->lenient ? NTK_OK : load_err(c, e, k->name, why);
      ++cnt;
    }
    memcpy(field(c->cfg, k->offset), vals, (size_t)cnt * sizeof(int));
    *(int *)field(c->cfg, k->len_offset) = cnt;
    mark_set(c, idx, key_node);
    return NTK_OK;
  }
  if (set_scalar(c->cfg, k, (const char *)v->data.scalar.value, is_null_scalar(v), why, sizeof why))
    return c->lenient ? NTK_OK : load_err(c, v, k->name, why);
  mark_set(c, idx, key_node);
  return NTK_OK;
}

static int load_mapping(load_ctx *c, yaml_node_t *map, const char *prefix) {
  yaml_node_pair_t *first = map->data.mapping.pairs.start;
  for (yaml_node_pair_t *pr = first; pr < map->data.mapping.pairs.top; ++pr) {
    yaml_node_t *kn = yaml_document_get_node(c->doc, pr->key);
    yaml_node_t *vn = yaml_document_get_node(c->doc, pr->value);
    if (kn->type != YAML_SCALAR_NODE)
      return load_err(c, kn, prefix[0] ? prefix : NULL,
                      "a key must be a plain name, not a mapping or sequence");
    const char *kt = (const char *)kn->data.scalar.value;
    char path[256];
    int w = snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", kt);
    if (w < 0 || (size_t)w >= sizeof path) return load_err(c, kn, NULL, "key is too long");
    /* a repeated section ("model:" twice) is as much an error as a repeated key */
    for (yaml_node_pair_t *q = first; q < pr; ++q) {
      yaml_node_t *qk = yaml_document_get_node(c->doc, q->key);
      if (qk->type == YAML_SCALAR_NODE && strcmp((const char *)qk->data.scalar.value, kt) == 0)
        return ntk_err_set(NTK_ERR_INPUT, "%s:%d: %s: duplicate key (first given at line %d)",
                           c->file, line_of(kn), path, line_of(qk));
    }
    const ntk_config_key *k = ntk_config_find_key(path);
    if (k) {
      NTK_CHECK(load_value(c, k, kn, vn));
    } else if (is_section(path)) {
      if (vn->type == YAML_MAPPING_NODE) {
        NTK_CHECK(load_mapping(c, vn, path));
      } else if (!(vn->type == YAML_SCALAR_NODE && is_null_scalar(vn)) && !c->lenient) {
        /* an empty "model:" is harmless; anything else is a misplaced value */
        return ntk_err_set(NTK_ERR_INPUT, "%s:%d: %s: expected a mapping of %s.* keys, got a %s",
                           c->file, line_of(kn), path, path,
                           vn->type == YAML_SCALAR_NODE ? "scalar" : "sequence");
      }
    } else if (!c->lenient) {
      const char *s = ntk_config_suggest(path);
      if (s)
        return ntk_err_set(NTK_ERR_INPUT, "%s:%d: unknown key '%s' (did you mean '%s'?)", c->file,
                           line_of(kn), path, s);
      return ntk_err_set(NTK_ERR_INPUT, "%s:%d: unknown key '%s'", c->file, line_of(kn), path);
    }
  }
  return NTK_OK;
}

static int syntax_err(const char *file, const yaml_parser_t *parser, int with_context) {
  return ntk_err_set(NTK_ERR_INPUT, "%s:%d:%d: YAML syntax error: %s%s%s", file,
                     (int)parser->problem_mark.line + 1, (int)parser->problem_mark.column + 1,
                     parser->problem ? parser->problem : "unknown problem",
                     with_context && parser->context ? ", " : "",
                     with_context && parser->context ? parser->context : "");
}

/* A configuration nests three levels (sections, keys, lists).  libyaml's cost grows with
 * the square of the nesting, so a deeper text is refused from its events, before any
 * document is built; the scan stops at the first level too deep. */
static int check_depth(const char *file, const unsigned char *text, size_t len) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser))
    return ntk_err_set(NTK_ERR_MEMORY, "cannot initialise the YAML parser");
  yaml_parser_set_input_string(&parser, text, len);
  int depth = 0, rc = NTK_OK;
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&parser, &ev)) {
      rc = syntax_err(file, &parser, 1);
      break;
    }
    const yaml_event_type_t type = ev.type;
    const int line = (int)ev.start_mark.line + 1;
    yaml_event_delete(&ev);
    if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) {
      if (++depth > NTK_CONFIG_MAX_DEPTH) {
        rc = ntk_err_set(NTK_ERR_INPUT,
                         "%s:%d: YAML nested more than %d levels deep (a configuration needs 3: "
                         "sections, keys, lists)",
                         file, line, NTK_CONFIG_MAX_DEPTH);
        break;
      }
    } else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT) {
      --depth;
    } else if (type == YAML_STREAM_END_EVENT) {
      break;
    }
  }
  yaml_parser_delete(&parser);
  return rc;
}

/* The loader of files and stored texts: text (len bytes) over cfg's current values. */
static int load_text(load_ctx *c, const unsigned char *text, size_t len) {
  const char *file = c->file;
  NTK_CHECK(check_depth(file, text, len));
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser))
    return ntk_err_set(NTK_ERR_MEMORY, "cannot initialise the YAML parser");
  yaml_parser_set_input_string(&parser, text, len);
  int rc = NTK_OK;
  if (!yaml_parser_load(&parser, &doc)) {
    rc = syntax_err(file, &parser, 1);
    yaml_parser_delete(&parser);
    return rc;
  }
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (!root) {
    /* an empty file (or only comments) asks for the defaults */
  } else if (root->type == YAML_SCALAR_NODE && is_null_scalar(root)) {
  } else if (root->type != YAML_MAPPING_NODE) {
    rc = ntk_err_set(NTK_ERR_INPUT, "%s:%d: the top level must be a mapping of keys, got a %s",
                     file, line_of(root), root->type == YAML_SCALAR_NODE ? "scalar" : "sequence");
  } else {
    c->doc = &doc;
    rc = load_mapping(c, root, "");
  }
  if (rc == NTK_OK && root) {
    /* a second document would be silently ignored; refuse it */
    yaml_document_t doc2;
    if (!yaml_parser_load(&parser, &doc2)) {
      rc = syntax_err(file, &parser, 0);
    } else {
      yaml_node_t *r2 = yaml_document_get_root_node(&doc2);
      if (r2)
        rc = ntk_err_set(NTK_ERR_INPUT, "%s:%d: only one YAML document is allowed", file,
                         line_of(r2));
      yaml_document_delete(&doc2);
    }
  }
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  return rc;
}

/* The whole file: a configuration is small, and one text serves the depth scan and the
 * loader. */
static int read_file(const char *path, unsigned char **text, size_t *len) {
  *text = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return ntk_err_set(NTK_ERR_INPUT, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    fclose(f);
    return ntk_err_set(NTK_ERR_INPUT, "cannot open %s: %s", path, strerror(EISDIR));
  }
  char *buf = NULL;
  size_t size = 0;
  FILE *m = open_memstream(&buf, &size);
  int rc = m ? NTK_OK : ntk_err_set(NTK_ERR_MEMORY, "out of memory reading %s", path);
  char chunk[65536];
  size_t got;
  while (!rc && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (fwrite(chunk, 1, got, m) != got) rc = ntk_err_set(NTK_ERR_MEMORY, "out of memory reading %s", path);
  if (!rc && ferror(f)) rc = ntk_err_set(NTK_ERR_INPUT, "cannot read %s: %s", path, strerror(errno));
  fclose(f);
  if (m && fclose(m) != 0 && !rc) rc = ntk_err_set(NTK_ERR_MEMORY, "out of memory reading %s", path);
  if (rc) {
    free(buf);
    return rc;
  }
  *text = (unsigned char *)buf;
  *len = size;
  return NTK_OK;
}

int ntk_config_load(const char *path, ntk_config *cfg) {
  ntk_config_defaults(cfg);
  if (!path || !*path) return ntk_err_set(NTK_ERR_INPUT, "no configuration file given");
  unsigned char *text;
  size_t len;
  NTK_CHECK(read_file(path, &text, &len));
  snprintf(cfg->source, sizeof cfg->source, "%s", path);
  snprintf(origin_src, sizeof origin_src, "%s", path);
  load_ctx *c = calloc(1, sizeof *c);
  int rc;
  if (!c) {
    rc = ntk_err_set(NTK_ERR_MEMORY, "out of memory loading %s", path);
  } else {
    *c = (load_ctx){.file = path, .cfg = cfg, .record_origin = 1};
    rc = load_text(c, text, len);
    free(c);
  }
  free(text);
  if (rc != NTK_OK) ntk_err_trace(__FILE__, __LINE__, __func__);
  return rc;
}

int ntk_config_from_text(const char *text, const char *label, ntk_config *cfg,
                         unsigned char given[NTK_CONFIG_MAX_KEYS]) {
  set_defaults(cfg);
  snprintf(cfg->source, sizeof cfg->source, "%s", label);
  if (given) memset(given, 0, NTK_CONFIG_MAX_KEYS);
  if (!text) return ntk_err_set(NTK_ERR_INPUT, "%s: no configuration text", label);
  load_ctx *c = calloc(1, sizeof *c);
  if (!c) return ntk_err_set(NTK_ERR_MEMORY, "out of memory reading %s", label);
  *c = (load_ctx){.file = label, .cfg = cfg, .lenient = 1, .given = given};
  int rc = load_text(c, (const unsigned char *)text, strlen(text));
  free(c);
  if (rc != NTK_OK) ntk_err_trace(__FILE__, __LINE__, __func__);
  return rc;
}

/* ------------------------------------------------------------------- --set -- */

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) ++s;
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
  return s;
}

/* YAML-like unquoting of one scalar; returns 1 if it was quoted. */
static int unquote(char *s) {
  size_t n = strlen(s);
  if (n < 2 || (s[0] != '"' && s[0] != '\'') || s[n - 1] != s[0]) return 0;
  char q = s[0], *out = s;
  for (size_t i = 1; i + 1 < n; ++i) {
    if (q == '\'' && s[i] == '\'' && s[i + 1] == '\'' && i + 2 < n)
      ++i; /* '' is a quote inside single quotes */
    else if (q == '"' && s[i] == '\\' && i + 2 < n) {
      ++i;
      if (s[i] == 'n') {
        *out++ = '\n';
        continue;
      }
      if (s[i] == 't') {
        *out++ = '\t';
        continue;
      }
    }
    *out++ = s[i];
  }
  *out = '\0';
  return 1;
}

int ntk_config_set(ntk_config *cfg, const char *assignment) {
  if (!assignment) return ntk_err_set(NTK_ERR_INPUT, "--set: missing KEY=VALUE");
  char buf[NTK_PATH_MAX + 256];
  if (strlen(assignment) >= sizeof buf)
    return ntk_err_set(NTK_ERR_INPUT, "--set: assignment is too long");
  strcpy(buf, assignment);
  char *eq = strchr(buf, '=');
  if (!eq)
    return ntk_err_set(NTK_ERR_INPUT, "--set '%.200s': expected KEY=VALUE, e.g. model.width=1024",
                       assignment);
  *eq = '\0';
  char *key = trim(buf), *val = trim(eq + 1);
  const ntk_config_key *k = ntk_config_find_key(key);
  if (!k) {
    if (is_section(key))
      return ntk_err_set(NTK_ERR_INPUT,
                         "--set %.200s: is a section; set one of its keys (%.200s.*)", key, key);
    const char *s = ntk_config_suggest(key);
    if (s)
      return ntk_err_set(NTK_ERR_INPUT, "--set: unknown key '%.200s' (did you mean '%s'?)", key, s);
    return ntk_err_set(NTK_ERR_INPUT, "--set: unknown key '%.200s'", key);
  }
  int quoted = unquote(val);
  int is_null = !quoted && (!*val || !strcmp(val, "~") || !strcasecmp(val, "null"));
  char why[MSG];
  if (set_scalar(cfg, k, val, is_null, why, sizeof why))
    return ntk_err_set(NTK_ERR_INPUT, "--set %s: %s", k->name, why);
  origin_cli[key_index(k)] = 1;
  return NTK_OK;
}

/* ---------------------------------------------------------------- validate -- */

static int fail_key(const ntk_config *cfg, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_key(const ntk_config *cfg, const char *name, const char *fmt, ...) {
  char what[MSG];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  const ntk_config_key *k = ntk_config_find_key(name);
  int i = k ? key_index(k) : -1;
  int mine = origin_src[0] && strcmp(origin_src, cfg->source) == 0;
  if (i >= 0 && origin_cli[i]) return ntk_err_set(NTK_ERR_INPUT, "--set %s: %s", name, what);
  if (i >= 0 && mine && origin_line[i] > 0)
    return ntk_err_set(NTK_ERR_INPUT, "%s:%d: %s: %s", cfg->source, origin_line[i], name, what);
  if (strcmp(cfg->source, "<none>") != 0)
    return ntk_err_set(NTK_ERR_INPUT, "%s: %s: %s", cfg->source, name, what);
  return ntk_err_set(NTK_ERR_INPUT, "%s: %s", name, what);
}

/* the value of a key was given by the user (file or --set), as far as we know */
static int given(const ntk_config *cfg, const char *name) {
  const ntk_config_key *k = ntk_config_find_key(name);
  if (!k) return 0;
  int i = key_index(k);
  return origin_cli[i] || (origin_line[i] > 0 && strcmp(origin_src, cfg->source) == 0);
}

/* The struct can be filled by code as well as by the loader: re-check every value
 * against the table before the cross-key rules. */
static int check_ranges(ntk_config *cfg) {
  char allowed[256];
  for (int i = 0; i < NKEYS; ++i) {
    const ntk_config_key *k = &ntk_config_keys[i];
    ntk_config_allowed(k, allowed, sizeof allowed);
    switch (k->type) {
      case NTK_KEY_INT:
      case NTK_KEY_BOOL: {
        int v = *(const int *)cfield(cfg, k->offset);
        if (v < k->min || v > k->max)
          return fail_key(cfg, k->name, "%d is out of range (allowed: %s)", v, allowed);
        break;
      }
      case NTK_KEY_DOUBLE: {
        double v = *(const double *)cfield(cfg, k->offset);
        if (!isfinite(v) || v < k->min || v > k->max || (k->min == POS && v <= 0))
          return fail_key(cfg, k->name, "%g is out of range (allowed: %s)", v, allowed);
        break;
      }
      case NTK_KEY_ENUM: {
        int v = *(const int *)cfield(cfg, k->offset);
        if (v < 0 || v >= count_choices(k->choices))
          return fail_key(cfg, k->name, "%d is not a valid value (allowed: %s)", v, allowed);
        break;
      }
      case NTK_KEY_STRING: {
        const char *s = cfield(cfg, k->offset);
        size_t len = strnlen(s, (size_t)k->max + 1);
        if ((double)len > k->max)
          return fail_key(cfg, k->name, "value is too long (allowed: %s)", allowed);
        if ((double)len < k->min)
          return fail_key(cfg, k->name, "must not be empty (allowed: %s)", allowed);
        if (k->choices) {
          int ok = 0;
          for (int c = 0; k->choices[c]; ++c) ok |= strcmp(s, k->choices[c]) == 0;
          if (!ok) return fail_key(cfg, k->name, "unknown value '%s' (allowed: %s)", s, allowed);
        }
        break;
      }
      case NTK_KEY_INT_LIST: {
        int len = *(const int *)cfield(cfg, k->len_offset);
        const int *v = cfield(cfg, k->offset);
        if (len < 0 || len > NTK_MAX_LIST)
          return fail_key(cfg, k->name, "bad list length %d (allowed: %s)", len, allowed);
        for (int j = 0; j < len; ++j)
          if (v[j] < k->min || v[j] > k->max)
            return fail_key(cfg, k->name, "list element %d is out of range (allowed: %s)", v[j],
                            allowed);
        break;
      }
      case NTK_KEY_UINT64:
        break;
    }
  }
  return NTK_OK;
}

int ntk_config_validate(ntk_config *cfg) {
  NTK_CHECK(check_ranges(cfg));
  const int L = cfg->model.depth;

  /* data */
  if (cfg->data.source != NTK_DATA_HDF5 && cfg->data.n_train < 1)
    return fail_key(cfg, "data.n_train",
                    "data.source %s needs at least one training sample, got %d (allowed: >= 1; "
                    "0 = all rows only for hdf5)",
                    ntk_config_enum_name("data.source", cfg->data.source), cfg->data.n_train);
  if (cfg->data.source == NTK_DATA_SYNTHETIC_1D) {
    if (cfg->data.dim != 1 && given(cfg, "data.dim"))
      return fail_key(cfg, "data.dim",
                      "data.source synthetic_1d has 1-dimensional inputs, got %d (allowed: 1, "
                      "or choose data.source teacher or sphere)",
                      cfg->data.dim);
    cfg->data.dim = 1;
  }
  if (cfg->data.source == NTK_DATA_SPHERE && cfg->data.dim < 2)
    return fail_key(cfg, "data.dim",
                    "data.source sphere needs inputs on the unit sphere of R^d with d >= 2, "
                    "got %d (allowed: >= 2)",
                    cfg->data.dim);
  if (cfg->data.source == NTK_DATA_HDF5 && !cfg->data.path[0])
    return fail_key(cfg, "data.source",
                    "data.source hdf5 needs data.path, the HDF5 file with datasets x and y");
  if (cfg->data.source == NTK_DATA_FASHION_MNIST) {
    if (!cfg->data.path[0]) snprintf(cfg->data.path, sizeof cfg->data.path, NTK_FASHION_MNIST_DIR);
    if (cfg->data.n_train > 60000)
      return fail_key(cfg, "data.n_train",
                      "Fashion-MNIST has 60000 training images, asked for %d (allowed: 1 .. "
                      "60000)",
                      cfg->data.n_train);
    if (cfg->data.n_test > 10000)
      return fail_key(cfg, "data.n_test",
                      "Fashion-MNIST has 10000 test images, asked for %d (allowed: 0 .. 10000)",
                      cfg->data.n_test);
    if (cfg->data.n_classes == 1)
      return fail_key(cfg, "data.classes",
                      "a class subset needs at least 2 classes (allowed: 2 to 10 distinct "
                      "labels 0..9, or [] for all)");
  }
  for (int i = 0; i < cfg->data.n_classes; ++i)
    for (int j = 0; j < i; ++j)
      if (cfg->data.classes[i] == cfg->data.classes[j])
        return fail_key(cfg, "data.classes",
                        "class %d is listed twice (allowed: distinct labels 0..9)",
                        cfg->data.classes[i]);

  /* input layer */
  const int m = cfg->fourier.features;
  if (cfg->fourier.trainable && m == 0)
    return fail_key(cfg, "fourier.trainable",
                    "true needs Fourier features to train (fourier.features > 0, got 0)");
  if (!cfg->fourier.project) {
    /* h0 = phi(x): the width is not free.  hdf5: d is known only from the file; the model
     * checks it when the data is loaded */
    const int fashion = cfg->data.source == NTK_DATA_FASHION_MNIST;
    const int d = fashion ? 28 * 28 : cfg->data.source != NTK_DATA_HDF5 ? cfg->data.dim : 0;
    const int p = ntk_config_input_dim(cfg, d);
    const char *why = m > 0    ? "2*fourier.features"
                      : fashion ? "the Fashion-MNIST input dimension"
                                : "data.dim";
    if (p > 0 && cfg->model.width != p)
      return fail_key(cfg, "model.width",
                      "fourier.project: false makes h0 = phi(x), so the width must equal %s = "
                      "%d, got %d",
                      why, p, cfg->model.width);
  }

  /* blocks and stochastic depth */
  if (cfg->depth.mask_len > 0 && cfg->depth.mask_len != L)
    return fail_key(cfg, "depth.mask",
                    "has %d entries but model.depth is %d (allowed: one 0/1 per block, or [])",
                    cfg->depth.mask_len, L);
  if (!cfg->residual.skip) {
    if (cfg->depth.survival < 1.0)
      return fail_key(cfg, "depth.survival",
                      "stochastic depth drops residual branches and needs residual.skip: true "
                      "(allowed with skip false: 1)");
    for (int i = 0; i < cfg->depth.mask_len; ++i)
      if (!cfg->depth.mask[i])
        return fail_key(cfg, "depth.mask",
                        "a dropped block needs residual.skip: true (allowed with skip false: "
                        "all ones)");
  }

  /* kernel and eigensolver */
  if (cfg->data.n_train > 0 && cfg->ntk.top_k > cfg->data.n_train)
    return fail_key(cfg, "ntk.top_k", "%d exceeds data.n_train = %d (allowed: 0 .. %d)",
                    cfg->ntk.top_k, cfg->data.n_train, cfg->data.n_train);
  if (cfg->ntk.method == NTK_METHOD_MATRIX_FREE) {
    if (cfg->ntk.top_k < 1)
      return fail_key(cfg, "ntk.top_k",
                      "ntk.method matrix_free computes the top K eigenpairs only and needs K "
                      "(allowed: 1 .. data.n_train)");
    if (cfg->output.save_ntk)
      return fail_key(cfg, "output.save_ntk",
                      "ntk.method matrix_free never forms the N x N kernel (allowed: false)");
    if (cfg->eigensolver.ncv > 0 &&
        (cfg->eigensolver.ncv <= cfg->ntk.top_k ||
         (cfg->data.n_train > 0 && cfg->eigensolver.ncv > cfg->data.n_train)))
      return fail_key(cfg, "eigensolver.ncv",
                      "%d: the basis must be larger than ntk.top_k = %d and at most "
                      "data.n_train (allowed: 0 or %d .. %d)",
                      cfg->eigensolver.ncv, cfg->ntk.top_k, cfg->ntk.top_k + 1,
                      cfg->data.n_train > 0 ? cfg->data.n_train : INT_MAX);
  }
  /* training */
  if (cfg->train.optimizer == NTK_OPT_SGD) {
    if (cfg->train.batch_size < 1)
      return fail_key(cfg, "train.batch_size",
                      "train.optimizer sgd needs a batch size, got %d (allowed: 1 .. data.n_train)",
                      cfg->train.batch_size);
    if (cfg->data.n_train > 0 && cfg->train.batch_size > cfg->data.n_train)
      return fail_key(cfg, "train.batch_size", "%d exceeds data.n_train = %d (allowed: 1 .. %d)",
                      cfg->train.batch_size, cfg->data.n_train, cfg->data.n_train);
  } else if (cfg->train.batch_size != 0) {
    return fail_key(cfg, "train.batch_size",
                    "is only used by train.optimizer sgd (allowed with gd: 0, the full batch)");
  }
  if (cfg->train.measure == NTK_MEASURE_LIST && cfg->train.measure_steps_len == 0 &&
      cfg->train.steps > 0)
    return fail_key(cfg, "train.measure_steps",
                    "train.measure list needs the steps to measure at (allowed: a list of steps "
                    "0 .. train.steps)");
  if (cfg->train.measure != NTK_MEASURE_LIST && cfg->train.measure_steps_len > 0)
    return fail_key(cfg, "train.measure_steps",
                    "is only used with train.measure: list (allowed otherwise: [])");
  for (int i = 0; i < cfg->train.measure_steps_len; ++i)
    if (cfg->train.measure_steps[i] > cfg->train.steps)
      return fail_key(cfg, "train.measure_steps",
                      "step %d is beyond train.steps = %d (allowed: 0 .. %d)",
                      cfg->train.measure_steps[i], cfg->train.steps, cfg->train.steps);
  if ((cfg->grid.rows == 0) != (cfg->grid.cols == 0))
    return fail_key(cfg, cfg->grid.rows == 0 ? "grid.rows" : "grid.cols",
                    "give both grid.rows and grid.cols, or neither (0 = automatic)");
  return NTK_OK;
}

/* ------------------------------------------------------------ printing -- */

static void quote_string(const char *s, char *buf, size_t n) {
  size_t o = 0;
  if (n < 3) {
    if (n) buf[0] = '\0';
    return;
  }
  buf[o++] = '"';
  for (const unsigned char *p = (const unsigned char *)s; *p && o + 6 < n; ++p) {
    if (*p == '"' || *p == '\\') {
      buf[o++] = '\\';
      buf[o++] = (char)*p;
    } else if (*p < 0x20 || *p == 0x7f) {
      o += (size_t)snprintf(buf + o, n - o, "\\x%02x", *p);
    } else {
      buf[o++] = (char)*p;
    }
  }
  buf[o++] = '"';
  buf[o] = '\0';
}

/* shortest text that reads back to the same double */
static void double_text(double v, char *buf, size_t n) {
  for (int prec = 1; prec <= 17; ++prec) {
    snprintf(buf, n, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  /* keep it recognisably a number with a decimal point ("1.0", not "1") */
  if (!strpbrk(buf, ".e") && strlen(buf) + 3 < n) strcat(buf, ".0");
}

void ntk_config_value_text(const ntk_config *cfg, const ntk_config_key *k, char *buf, size_t n) {
  if (!buf || n == 0) return;
  switch (k->type) {
    case NTK_KEY_INT:
      snprintf(buf, n, "%d", *(const int *)cfield(cfg, k->offset));
      break;
    case NTK_KEY_UINT64:
      snprintf(buf, n, "%" PRIu64, *(const uint64_t *)cfield(cfg, k->offset));
      break;
    case NTK_KEY_DOUBLE:
      double_text(*(const double *)cfield(cfg, k->offset), buf, n);
      break;
    case NTK_KEY_BOOL:
      snprintf(buf, n, "%s", *(const int *)cfield(cfg, k->offset) ? "true" : "false");
      break;
    case NTK_KEY_ENUM: {
      int v = *(const int *)cfield(cfg, k->offset);
      if (v >= 0 && v < count_choices(k->choices))
        snprintf(buf, n, "%s", k->choices[v]);
      else
        snprintf(buf, n, "%d", v);
      break;
    }
    case NTK_KEY_STRING:
      quote_string((const char *)cfield(cfg, k->offset), buf, n);
      break;
    case NTK_KEY_INT_LIST: {
      int len = *(const int *)cfield(cfg, k->len_offset);
      const int *v = cfield(cfg, k->offset);
      size_t o = (size_t)snprintf(buf, n, "[");
      for (int i = 0; i < len && i < NTK_MAX_LIST && o < n; ++i)
        o += (size_t)snprintf(buf + o, n - o, "%s%d", i ? ", " : "", v[i]);
      if (o < n) snprintf(buf + o, n - o, "]");
      break;
    }
  }
}

static char *to_yaml(const ntk_config *cfg, int commented) {
  char *text = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&text, &size);
  if (!f) {
    ntk_err_set(NTK_ERR_MEMORY, "out of memory printing the configuration");
    return NULL;
  }
  char section[64] = "";
  char val[2 * NTK_PATH_MAX], allowed[256];
  for (int i = 0; i < NKEYS; ++i) {
    const ntk_config_key *k = &ntk_config_keys[i];
    const char *dot = strchr(k->name, '.');
    const char *leaf = k->name;
    char sec[64] = "";
    if (dot && (size_t)(dot - k->name) < sizeof sec) {
      memcpy(sec, k->name, (size_t)(dot - k->name));
      sec[dot - k->name] = '\0';
      leaf = dot + 1;
    }
    if (strcmp(sec, section) != 0) {
      if (sec[0]) fprintf(f, "%s:\n", sec);
      snprintf(section, sizeof section, "%s", sec);
    }
    ntk_config_value_text(cfg, k, val, sizeof val);
    if (commented) {
      char lhs[2 * NTK_PATH_MAX + 64];
      snprintf(lhs, sizeof lhs, "%s%s: %s", sec[0] ? "  " : "", leaf, val);
      ntk_config_allowed(k, allowed, sizeof allowed);
      fprintf(f, "%-34s # %s [%s]\n", lhs, k->doc, allowed);
    } else {
      fprintf(f, "%s%s: %s\n", sec[0] ? "  " : "", leaf, val);
    }
  }
  if (fclose(f) != 0 || !text) {
    free(text);
    ntk_err_set(NTK_ERR_MEMORY, "out of memory printing the configuration");
    return NULL;
  }
  return text;
}

char *ntk_config_to_yaml(const ntk_config *cfg) { return to_yaml(cfg, 0); }
char *ntk_config_to_yaml_commented(const ntk_config *cfg) { return to_yaml(cfg, 1); }

const char *ntk_config_diff(const ntk_config *a, const ntk_config *b) {
  for (int i = 0; i < NKEYS; ++i) {
    const ntk_config_key *k = &ntk_config_keys[i];
    const void *pa = cfield(a, k->offset), *pb = cfield(b, k->offset);
    int same = 1;
    switch (k->type) {
      case NTK_KEY_INT:
      case NTK_KEY_BOOL:
      case NTK_KEY_ENUM:
        same = *(const int *)pa == *(const int *)pb;
        break;
      case NTK_KEY_UINT64:
        same = *(const uint64_t *)pa == *(const uint64_t *)pb;
        break;
      case NTK_KEY_DOUBLE:
        same = *(const double *)pa == *(const double *)pb;
        break;
      case NTK_KEY_STRING:
        same = strcmp(pa, pb) == 0;
        break;
      case NTK_KEY_INT_LIST: {
        int la = *(const int *)cfield(a, k->len_offset),
            lb = *(const int *)cfield(b, k->len_offset);
        same = la == lb && (la <= 0 || memcmp(pa, pb, (size_t)la * sizeof(int)) == 0);
        break;
      }
    }
    if (!same) return k->name;
  }
  return NULL;
}

const char *ntk_config_enum_name(const char *key, int value) {
  const ntk_config_key *k = ntk_config_find_key(key);
  if (!k || !k->choices || value < 0 || value >= count_choices(k->choices)) return "?";
  return k->choices[value];
}

/* ------------------------------------------------------ derived quantities -- */

double ntk_config_alpha(const ntk_config *cfg, int l) {
  const int L = cfg->model.depth;
  const double a = cfg->residual.alpha;
  if (l < 1 || l > L) return NAN; /* a caller bug should show, not pass as a scale */
  switch (cfg->residual.schedule) {
    case NTK_ALPHA_CONSTANT:
      return a;
    case NTK_ALPHA_INV_SQRT_DEPTH:
      return a / sqrt((double)L);
    case NTK_ALPHA_INV_DEPTH:
      return a / (double)L;
    case NTK_ALPHA_POWER:
      return a * pow((double)l, -cfg->residual.power);
  }
  return NAN;
}

double ntk_config_survival(const ntk_config *cfg, int l) {
  const int L = cfg->model.depth;
  const double p = cfg->depth.survival;
  if (l < 1 || l > L) return NAN;
  switch (cfg->depth.schedule) {
    case NTK_SURVIVAL_UNIFORM:
      return p;
    case NTK_SURVIVAL_LINEAR:
      return 1.0 - ((double)l / (double)L) * (1.0 - p);
  }
  return NAN;
}

int ntk_config_input_dim(const ntk_config *cfg, int d) {
  return cfg->fourier.features > 0 ? 2 * cfg->fourier.features : d;
}

int ntk_config_width(const ntk_config *cfg, int d) {
  return cfg->fourier.project ? cfg->model.width : ntk_config_input_dim(cfg, d);
}

int ntk_config_wants_eigenvectors(const ntk_config *cfg) {
  return cfg->train.steps > 0 || cfg->output.save_eigenvectors ||
         (cfg->ntk.method == NTK_METHOD_MATRIX_FREE && cfg->eigensolver.frobenius_probes > 0);
}
