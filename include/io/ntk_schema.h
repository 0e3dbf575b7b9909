/* ntk_schema: the one list of the names in an ntkspec HDF5 file (docs/OUTPUT.md).  The
 * writer's trajectory appends, --resume's truncation, `ntkspec info`, the output size
 * estimate and, through `ntkspec schema` (JSON, committed as tools/ntk_schema.json and
 * checked by a test), the Python tools all take the /trajectory datasets from
 * ntk_schema_trajectory; the other groups and the root attributes are listed here too, so
 * that a reader knows every name a writer may produce.  Names used by code in more than one
 * module are macros below, each written once. */
#ifndef NTK_SCHEMA_H
#define NTK_SCHEMA_H
#include <stdio.h>

/* Root attributes the io layer, resume and info read back. */
#define NTK_FORMAT_NAME "ntkspec"
#define NTK_FORMAT_VERSION 1
#define NTK_ATTR_FORMAT "format"
#define NTK_ATTR_FORMAT_VERSION "format_version"
#define NTK_ATTR_VERSION "version"
#define NTK_ATTR_STATUS "status"
#define NTK_ATTR_CONFIG "config"
#define NTK_ATTR_KIND "kind"
#define NTK_ATTR_STEP "step"
#define NTK_ATTR_RESUME_COUNT "resume_count"
/* ntk.method matrix_free: the /trajectory series written as NaN because they need the
 * whole kernel (a comma-separated list; docs/METRICS.md "Matrix-free measurements") */
#define NTK_ATTR_NOT_COMPUTED "not_computed"
#define NTK_ATTR_ESTIMATED "estimated"
/* Values of `status` (docs/OUTPUT.md "Life cycle of the file"). */
#define NTK_STATUS_RUNNING "running"
#define NTK_STATUS_COMPLETE "complete"
#define NTK_STATUS_INTERRUPTED "interrupted"
#define NTK_STATUS_DIVERGED "diverged"
#define NTK_STATUS_FAILED "failed"
/* `kind` of a checkpoint file (a result file has no `kind`) */
#define NTK_KIND_CHECKPOINT "ntkspec-checkpoint"

/* The /trajectory series, in the order a measurement appends them. */
typedef enum {
  NTK_TRAJ_STEP,
  NTK_TRAJ_EIGENVALUES,
  NTK_TRAJ_LAMBDA_MAX,
  NTK_TRAJ_LAMBDA_MIN,
  NTK_TRAJ_CONDITION_NUMBER,
  NTK_TRAJ_EFFECTIVE_RANK,
  NTK_TRAJ_TRACE,
  NTK_TRAJ_FROBENIUS_NORM,
  NTK_TRAJ_KERNEL_TARGET_ALIGNMENT,
  NTK_TRAJ_DRIFT,
  NTK_TRAJ_EIGENVALUE_DRIFT,
  NTK_TRAJ_EIGENVALUE_SHIFT,
  NTK_TRAJ_NTK_CHANGE_NORM2,
  NTK_TRAJ_WEYL_OK,
  NTK_TRAJ_TRAIN_LOSS,
  NTK_TRAJ_TEST_LOSS,
  NTK_TRAJ_TRAIN_ACCURACY,
  NTK_TRAJ_TEST_ACCURACY,
  NTK_TRAJ_LAYER_TRACE,
  NTK_TRAJ_RESIDUAL_ENERGY,
  NTK_TRAJ_PREDICTED_TRAIN_LOSS,
  NTK_TRAJ_PREDICTED_TRAIN_LOSS_INFINITE,
  NTK_TRAJ_PREDICTED_TEST_LOSS,
  NTK_TRAJ_PREDICTED_TEST_LOSS_INFINITE,
  NTK_TRAJ_STABILITY_RATIO,
  NTK_TRAJ_TARGET_RAYLEIGH_QUOTIENT,
  NTK_TRAJ_EIGENPAIR_RESIDUAL,
  NTK_TRAJ_EIGENSOLVER_PRODUCTS,
  NTK_TRAJ_FROBENIUS_NORM_STDERR,
  NTK_TRAJ_NTK,
  NTK_TRAJ_EIGENVECTORS,
  NTK_TRAJ_COUNT
} ntk_traj_id;

/* What one row of a series is. */
typedef enum {
  NTK_SERIES_SCALAR, /* float64, shape (T) */
  NTK_SERIES_INT,    /* int64, shape (T) */
  NTK_SERIES_ROW_K,  /* float64 (T, K): one value per eigenvalue kept */
  NTK_SERIES_ROW_G,  /* float64 (T, G): one value per parameter group, G = L + 3 */
  NTK_SERIES_NN,     /* float64 (T, N, N): a distributed N x N matrix */
  NTK_SERIES_NK      /* float64 (T, N, K): a distributed N x K matrix */
} ntk_series_kind;

/* When a measurement writes the series (the size estimate counts what a config may write). */
typedef enum {
  NTK_WHEN_ALWAYS,
  NTK_WHEN_CLASSIFICATION,   /* classification data (argmax accuracies) */
  NTK_WHEN_VECTORS,          /* eigenvectors computed: training, or output.save_eigenvectors */
  NTK_WHEN_TRAINING,         /* train.steps > 0 */
  NTK_WHEN_TRAINING_ANALYTIC, /* train.steps > 0 and analytic.enabled */
  NTK_WHEN_SAVE_NTK,          /* output.save_ntk */
  NTK_WHEN_SAVE_EIGENVECTORS, /* output.save_eigenvectors */
  NTK_WHEN_MATRIX_FREE        /* ntk.method matrix_free */
} ntk_series_when;

typedef struct {
  const char *path; /* "/trajectory/NAME" */
  const char *name; /* NAME */
  ntk_series_kind kind;
  ntk_series_when when;
  const char *units; /* "" when dimensionless */
  const char *meaning;
} ntk_series_info;

extern const ntk_series_info ntk_schema_trajectory[NTK_TRAJ_COUNT];

/* A named item of a group (dataset or attribute) with its shape or type, for the readers. */
typedef struct {
  const char *name;
  const char *type; /* shape of a dataset ("(N, d)") or type of an attribute ("str") */
} ntk_schema_item;

typedef struct {
  const char *group; /* "/" for the root, "/data", "/params/step_<t>", ...; a checkpoint's
                      * groups are "checkpoint:/", "checkpoint:/params", ... */
  int attributes;    /* 1: the items are attributes of the group, 0: datasets in it */
  const char *when;
  const ntk_schema_item *items; /* terminated by {NULL, NULL} */
} ntk_schema_group;

/* Every group except /trajectory, terminated by {NULL}. */
extern const ntk_schema_group ntk_schema_groups[];

/* The trajectory series with this name (without "/trajectory/"), or NULL. */
const ntk_series_info *ntk_schema_series(const char *name);

/* The schema as JSON (`ntkspec schema`, tools/ntk_schema.json); returns 0, or -1 when the
 * stream failed. */
int ntk_schema_write_json(FILE *out);

#endif
