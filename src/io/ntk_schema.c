#include "ntk_schema.h"

#include <string.h>

#define TRAJ(id, nm, kind, when, units, meaning) \
  [id] = {"/trajectory/" nm, nm, kind, when, units, meaning}

/* Order = the append order of a measurement (and so the datasets' creation order). */
const ntk_series_info ntk_schema_trajectory[NTK_TRAJ_COUNT] = {
    TRAJ(NTK_TRAJ_STEP, "step", NTK_SERIES_INT, NTK_WHEN_ALWAYS, "steps",
         "the training step of the row (0 first)"),
    TRAJ(NTK_TRAJ_EIGENVALUES, "eigenvalues", NTK_SERIES_ROW_K, NTK_WHEN_ALWAYS, "f^2",
         "the K largest eigenvalues of Theta_t, descending"),
    TRAJ(NTK_TRAJ_LAMBDA_MAX, "lambda_max", NTK_SERIES_SCALAR, NTK_WHEN_ALWAYS, "f^2",
         "largest eigenvalue"),
    TRAJ(NTK_TRAJ_LAMBDA_MIN, "lambda_min", NTK_SERIES_SCALAR, NTK_WHEN_ALWAYS, "f^2",
         "smallest eigenvalue; NaN with a top-K spectrum"),
    TRAJ(NTK_TRAJ_CONDITION_NUMBER, "condition_number", NTK_SERIES_SCALAR, NTK_WHEN_ALWAYS, "",
         "lambda_max / lambda_min; NaN with a top-K spectrum"),
    TRAJ(NTK_TRAJ_EFFECTIVE_RANK, "effective_rank", NTK_SERIES_SCALAR, NTK_WHEN_ALWAYS, "",
         "(tr Theta)^2 / ||Theta||_F^2"),
    TRAJ(NTK_TRAJ_TRACE, "trace", NTK_SERIES_SCALAR, NTK_WHEN_ALWAYS, "f^2", "tr Theta_t"),
    TRAJ(NTK_TRAJ_FROBENIUS_NORM, "frobenius_norm", NTK_SERIES_SCALAR, NTK_WHEN_ALWAYS, "f^2",
         "||Theta_t||_F"),
    TRAJ(NTK_TRAJ_KERNEL_TARGET_ALIGNMENT, "kernel_target_alignment", NTK_SERIES_SCALAR,
         NTK_WHEN_ALWAYS, "", "sum_c y_c^T Theta y_c / (||Theta||_F sum_c ||y_c||^2)"),
    TRAJ(NTK_TRAJ_DRIFT, "drift", NTK_SERIES_SCALAR, NTK_WHEN_ALWAYS, "",
         "||Theta_t - Theta_0||_F / ||Theta_0||_F"),
    TRAJ(NTK_TRAJ_EIGENVALUE_DRIFT, "eigenvalue_drift", NTK_SERIES_SCALAR, NTK_WHEN_ALWAYS, "",
         "max_i |lambda_i(t) - lambda_i(0)| / lambda_1(0)"),
    TRAJ(NTK_TRAJ_EIGENVALUE_SHIFT, "eigenvalue_shift", NTK_SERIES_SCALAR, NTK_WHEN_ALWAYS, "f^2",
         "max_i |lambda_i(t) - lambda_i(0)|"),
    TRAJ(NTK_TRAJ_NTK_CHANGE_NORM2, "ntk_change_norm2", NTK_SERIES_SCALAR, NTK_WHEN_ALWAYS, "f^2",
         "||Theta_t - Theta_0||_2 (0 at step 0)"),
    TRAJ(NTK_TRAJ_WEYL_OK, "weyl_ok", NTK_SERIES_INT, NTK_WHEN_ALWAYS, "",
         "1 when eigenvalue_shift <= ntk_change_norm2 (Weyl) holds"),
    TRAJ(NTK_TRAJ_TRAIN_LOSS, "train_loss", NTK_SERIES_SCALAR, NTK_WHEN_ALWAYS, "y^2",
         "(1/2N) sum_i ||f(x_i) - y_i||^2 of the evaluation network"),
    TRAJ(NTK_TRAJ_TEST_LOSS, "test_loss", NTK_SERIES_SCALAR, NTK_WHEN_ALWAYS, "y^2",
         "the same on the test set; NaN without one"),
    TRAJ(NTK_TRAJ_TRAIN_ACCURACY, "train_accuracy", NTK_SERIES_SCALAR, NTK_WHEN_CLASSIFICATION,
         "", "argmax agreement on the training set"),
    TRAJ(NTK_TRAJ_TEST_ACCURACY, "test_accuracy", NTK_SERIES_SCALAR, NTK_WHEN_CLASSIFICATION, "",
         "argmax agreement on the test set"),
    TRAJ(NTK_TRAJ_LAYER_TRACE, "layer_trace", NTK_SERIES_ROW_G, NTK_WHEN_ALWAYS, "f^2",
         "trace of each parameter group's contribution (G, input, blocks 1..L, output)"),
    TRAJ(NTK_TRAJ_RESIDUAL_ENERGY, "residual_energy", NTK_SERIES_ROW_K, NTK_WHEN_VECTORS, "y^2",
         "sum_c (u_i^T r_c)^2 along each eigenvector"),
    TRAJ(NTK_TRAJ_PREDICTED_TRAIN_LOSS, "predicted_train_loss", NTK_SERIES_SCALAR,
         NTK_WHEN_TRAINING, "y^2", "kernel-regime train loss from Theta_0"),
    TRAJ(NTK_TRAJ_PREDICTED_TRAIN_LOSS_INFINITE, "predicted_train_loss_infinite",
         NTK_SERIES_SCALAR, NTK_WHEN_TRAINING_ANALYTIC, "y^2",
         "kernel-regime train loss from Theta_inf"),
    TRAJ(NTK_TRAJ_PREDICTED_TEST_LOSS, "predicted_test_loss", NTK_SERIES_SCALAR,
         NTK_WHEN_TRAINING, "y^2",
         "kernel-regime test loss from Theta_0 and Theta_0(test, train); NaN without a test set"),
    TRAJ(NTK_TRAJ_PREDICTED_TEST_LOSS_INFINITE, "predicted_test_loss_infinite", NTK_SERIES_SCALAR,
         NTK_WHEN_TRAINING_ANALYTIC, "y^2",
         "the same from Theta_inf and Theta_inf(test, train); NaN without a test set"),
    TRAJ(NTK_TRAJ_STABILITY_RATIO, "stability_ratio", NTK_SERIES_SCALAR, NTK_WHEN_TRAINING, "",
         "eta lambda_max / (2N); linearised GD is stable below 1"),
    TRAJ(NTK_TRAJ_TARGET_RAYLEIGH_QUOTIENT, "target_rayleigh_quotient", NTK_SERIES_SCALAR,
         NTK_WHEN_MATRIX_FREE, "f^2",
         "sum_c y_c^T Theta y_c / sum_c ||y_c||^2 (one product per output); "
         "kernel_target_alignment times ||Theta||_F"),
    TRAJ(NTK_TRAJ_EIGENPAIR_RESIDUAL, "eigenpair_residual", NTK_SERIES_ROW_K,
         NTK_WHEN_MATRIX_FREE, "f^2",
         "||Theta u_i - lambda_i u_i|| of each eigenpair, recomputed with one product"),
    TRAJ(NTK_TRAJ_EIGENSOLVER_PRODUCTS, "eigensolver_products", NTK_SERIES_INT,
         NTK_WHEN_MATRIX_FREE, "", "products Theta v the eigensolver used (residual checks not counted)"),
    TRAJ(NTK_TRAJ_FROBENIUS_NORM_STDERR, "frobenius_norm_stderr", NTK_SERIES_SCALAR,
         NTK_WHEN_MATRIX_FREE, "f^2",
         "standard error of frobenius_norm's Hutchinson estimate (eigensolver.frobenius_probes); "
         "NaN without probes"),
    TRAJ(NTK_TRAJ_NTK, "ntk", NTK_SERIES_NN, NTK_WHEN_SAVE_NTK, "f^2", "Theta_t"),
    TRAJ(NTK_TRAJ_EIGENVECTORS, "eigenvectors", NTK_SERIES_NK, NTK_WHEN_SAVE_EIGENVECTORS, "",
         "column i belongs to eigenvalues[:, i]"),
};

static const ntk_schema_item root_attrs[] = {
    {NTK_ATTR_FORMAT, "str"},
    {NTK_ATTR_FORMAT_VERSION, "int"},
    {NTK_ATTR_VERSION, "str"},
    {NTK_ATTR_STATUS, "str"},
    {NTK_ATTR_CONFIG, "str"},
    {"command_line", "str"},
    {"mpi_size", "int"},
    {"process_grid", "str"},
    {"block_size", "int"},
    {"eigensolver", "str"},
    {"eigensolver_used", "str"},
    {NTK_ATTR_NOT_COMPUTED, "str"},
    {NTK_ATTR_ESTIMATED, "str"},
    {"ntk_method", "str"},
    {"seed", "int"},
    {"library_versions", "str"},
    {"slurm_job_id", "str"},
    {"slurm_nodes", "int"},
    {"start_utc", "str"},
    {"end_utc", "str"},
    {NULL, NULL}};

static const ntk_schema_item train_attrs[] = {
    {"learning_rate", "float"},
    {"stability_limit_lr", "float"},
    {"unstable", "int"},
    {"last_step", "int"},
    {"diverged_step", "int"},
    {NTK_ATTR_RESUME_COUNT, "int"},
    {"last_resume_step", "int"},
    {"last_resume_command_line", "str"},
    {"last_resume_mpi_size", "int"},
    {"last_resume_utc", "str"},
    {NULL, NULL}};

static const ntk_schema_item data_sets[] = {
    {"x_train", "(N, d)"}, {"y_train", "(N, k)"}, {"x_test", "(n_test, d)"},
    {"y_test", "(n_test, k)"}, {NULL, NULL}};

static const ntk_schema_item params_sets[] = {
    {"G", "(m, d)"}, {"W0", "(n, p)"}, {"b0", "(n,)"}, {"W", "(L, n, n)"},
    {"b", "(L, n)"}, {"V", "(k, n)"},  {"b_out", "(k,)"}, {NULL, NULL}};

static const ntk_schema_item analytic_sets[] = {
    {"nngp", "(N, N)"}, {"ntk", "(N, N)"}, {"eigenvalues", "(K,)"}, {NULL, NULL}};

static const ntk_schema_item analytic_attrs[] = {
    {"n_masks", "int"}, {"fourier", "str"}, {"dual_error", "float"}, {NULL, NULL}};

static const ntk_schema_item timing_sets[] = {
    {"phase", "(phases,) str"}, {"min", "(phases,)"}, {"avg", "(phases,)"},
    {"max", "(phases,)"},       {"flops", "(phases,)"}, {"calls", "(phases,) int64"},
    {NULL, NULL}};

static const ntk_schema_item timing_attrs[] = {
    {"train_steps", "int"}, {"train_step_seconds", "float"}, {"train_forward_seconds", "float"},
    {NULL, NULL}};

static const ntk_schema_item memory_attrs[] = {
    {"estimated_peak_bytes", "float"},       {"estimated_baseline_bytes", "float"},
    {"estimated_persistent_bytes", "float"}, {"estimated_peak_phase", "str"},
    {"measured_peak_bytes_min", "float"},    {"measured_peak_bytes_avg", "float"},
    {"measured_peak_bytes_max", "float"},    {NULL, NULL}};

static const ntk_schema_item sweep_sets[] = {
    {"widths", "(W,) int64"},       {"seeds", "(S,) int64"},
    {"distance", "(W, S)"},         {"eigenvalue_error", "(W, S)"},
    {"top_eigenvalues", "(W, S, K)"}, {"distance_mean", "(W,)"},
    {"distance_std", "(W,)"},       {NULL, NULL}};

static const ntk_schema_item sweep_attrs[] = {
    {"slope", "float"}, {"slope_ci_low", "float"}, {"slope_ci_high", "float"}, {"top_k", "int"},
    {NULL, NULL}};

static const ntk_schema_item ckpt_attrs[] = {
    {NTK_ATTR_KIND, "str"},     {NTK_ATTR_STEP, "int"},        {NTK_ATTR_CONFIG, "str"},
    {"mpi_size", "int"},        {"n_train", "int"},            {"learning_rate", "float"},
    {"loss0", "float"},         {"theta0_frobenius", "float"}, {"unstable", "int"},
    {"K", "int"},               {"Kinf", "int"},               {NULL, NULL}};

/* theta0: not with ntk.method matrix_free */
static const ntk_schema_item ckpt_root_sets[] = {
    {"theta0", "(N, N)"}, {"test_r0", "(n_test, k)"}, {NULL, NULL}};

static const ntk_schema_item ckpt_ref_sets[] = {{"eigenvalues", "(K,)"}, {"energy", "(K,)"},
                                                {"test_b", "(n_test, K)"}, {"test_p", "(K, k)"},
                                                {NULL, NULL}};

static const ntk_schema_item ckpt_ref_attrs[] = {{"rest", "float"}, {"test", "int"}, {NULL, NULL}};

static const ntk_schema_item base_attrs[] = {
    {NTK_ATTR_FORMAT, "str"}, {NTK_ATTR_FORMAT_VERSION, "int"}, {NTK_ATTR_VERSION, "str"},
    {NTK_ATTR_STATUS, "str"}, {NULL, NULL}};

const ntk_schema_group ntk_schema_groups[] = {
    {"/", 1, "always", root_attrs},
    {"/", 1, "training runs", train_attrs},
    {"/data", 0, "output.save_data (test sets when n_test > 0)", data_sets},
    {"/params/step_<t>", 0, "output.save_params (step 0 and the last step)", params_sets},
    {"/analytic", 0, "analytic.enabled", analytic_sets},
    {"/analytic", 1, "analytic.enabled", analytic_attrs},
    {"/timing", 0, "always", timing_sets},
    {"/timing", 1, "training runs", timing_attrs},
    {"/memory", 1, "ntkspec run", memory_attrs},
    {"/sweep", 0, "ntkspec sweep", sweep_sets},
    {"/sweep", 1, "ntkspec sweep", sweep_attrs},
    /* the checkpoint file (train.checkpoint): groups named "checkpoint:GROUP" */
    {"checkpoint:/", 1, "checkpoint files", base_attrs},
    {"checkpoint:/", 1, "checkpoint files", ckpt_attrs},
    {"checkpoint:/", 0, "checkpoint files", ckpt_root_sets},
    {"checkpoint:/params", 0, "checkpoint files", params_sets},
    {"checkpoint:/ref0", 0, "checkpoint files", ckpt_ref_sets},
    {"checkpoint:/ref0", 1, "checkpoint files", ckpt_ref_attrs},
    {"checkpoint:/refinf", 0, "checkpoint files with Kinf > 0", ckpt_ref_sets},
    {"checkpoint:/refinf", 1, "checkpoint files with Kinf > 0", ckpt_ref_attrs},
    {NULL, 0, NULL, NULL}};

const ntk_series_info *ntk_schema_series(const char *name) {
  for (int i = 0; i < NTK_TRAJ_COUNT; ++i)
    if (!strcmp(ntk_schema_trajectory[i].name, name)) return &ntk_schema_trajectory[i];
  return NULL;
}

static const char *const kind_names[] = {"scalar", "int", "row_k", "row_groups", "matrix_nn",
                                         "matrix_nk"};
static const char *const kind_shapes[] = {"(T,)", "(T,) int64", "(T, K)", "(T, G)",
                                          "(T, N, N)", "(T, N, K)"};
static const char *const when_names[] = {"always",   "classification",   "vectors",
                                         "training", "training_analytic", "save_ntk",
                                         "save_eigenvectors", "matrix_free"};

/* Names and texts of the schema contain no quote or backslash: printed as they are. */
int ntk_schema_write_json(FILE *out) {
  int bad = 0;
  bad |= fprintf(out, "{\n  \"format\": \"%s\",\n  \"format_version\": %d,\n", NTK_FORMAT_NAME,
                 NTK_FORMAT_VERSION) < 0;
  bad |= fprintf(out, "  \"checkpoint_kind\": \"%s\",\n  \"trajectory\": [\n", NTK_KIND_CHECKPOINT) < 0;
  for (int i = 0; i < NTK_TRAJ_COUNT; ++i) {
    const ntk_series_info *s = &ntk_schema_trajectory[i];
    bad |= fprintf(out,
                   "    {\"name\": \"%s\", \"path\": \"%s\", \"kind\": \"%s\", \"shape\": \"%s\", "
                   "\"when\": \"%s\", \"units\": \"%s\", \"meaning\": \"%s\"}%s\n",
                   s->name, s->path, kind_names[s->kind], kind_shapes[s->kind],
                   when_names[s->when], s->units, s->meaning,
                   i + 1 < NTK_TRAJ_COUNT ? "," : "") < 0;
  }
  bad |= fprintf(out, "  ],\n  \"groups\": [\n") < 0;
  for (int g = 0; ntk_schema_groups[g].group; ++g) {
    const ntk_schema_group *G = &ntk_schema_groups[g];
    bad |= fprintf(out, "    {\"group\": \"%s\", \"items\": \"%s\", \"when\": \"%s\", \"names\": {",
                   G->group, G->attributes ? "attributes" : "datasets", G->when) < 0;
    for (int i = 0; G->items[i].name; ++i)
      bad |= fprintf(out, "%s\"%s\": \"%s\"", i ? ", " : "", G->items[i].name, G->items[i].type) < 0;
    bad |= fprintf(out, "}}%s\n", ntk_schema_groups[g + 1].group ? "," : "") < 0;
  }
  bad |= fprintf(out, "  ]\n}\n") < 0;
  return bad ? -1 : 0;
}
