/* ntk_config: the run configuration.  One table (ntk_config_keys) lists every key with
 * its type, default, allowed values and a one-line doc; the YAML loader, the --set
 * overrides, the validator, the effective-config printer and the docs test all read it,
 * so a key exists in exactly one place.  Errors are one line naming file, key and what is
 * allowed; an unknown key gets a did-you-mean suggestion. */
#ifndef NTK_CONFIG_H
#define NTK_CONFIG_H
#include <float.h>
#include <stddef.h>
#include <stdint.h>

#define NTK_PATH_MAX 1024
#define NTK_MAX_LIST 64
#define NTK_CONFIG_MAX_KEYS 128 /* at least the table's rows (checked where it is built) */
#define NTK_CONFIG_MAX_DEPTH 16 /* YAML nesting refused beyond this (a configuration needs 3) */
/* data.path of the fashion_mnist source when none is given (Debian's dataset-fashion-mnist) */
#define NTK_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

typedef enum {
  NTK_ACT_RELU,
  NTK_ACT_ERF,
  NTK_ACT_TANH,
  NTK_ACT_GELU,
  NTK_ACT_IDENTITY,
  NTK_ACT_LEAKY_RELU,
  NTK_ACT_ABS,
  NTK_ACT_SIN,
  NTK_ACT_COS,
  NTK_ACT_SOFTPLUS,
  NTK_ACT_SILU,
  NTK_ACT_SIGMOID,
  NTK_ACT_SIGN
} ntk_activation;
#define NTK_ACT_COUNT (NTK_ACT_SIGN + 1)
typedef enum {
  NTK_ALPHA_CONSTANT,
  NTK_ALPHA_INV_SQRT_DEPTH,
  NTK_ALPHA_INV_DEPTH,
  NTK_ALPHA_POWER
} ntk_alpha_schedule;
typedef enum { NTK_SURVIVAL_UNIFORM, NTK_SURVIVAL_LINEAR } ntk_survival_schedule;
typedef enum {
  NTK_DATA_SYNTHETIC_1D,
  NTK_DATA_TEACHER,
  NTK_DATA_SPHERE,
  NTK_DATA_FASHION_MNIST,
  NTK_DATA_HDF5
} ntk_data_source;
/* structured and jacobian assemble the N x N kernel; matrix_free never does: it only
 * multiplies by it (ntk_ntkvp) for the top ntk.top_k eigenpairs (ntk_eigs, SLEPc). */
typedef enum { NTK_METHOD_STRUCTURED, NTK_METHOD_JACOBIAN, NTK_METHOD_MATRIX_FREE } ntk_ntk_method;
typedef enum { NTK_NETWORK_EVAL, NTK_NETWORK_MASK, NTK_NETWORK_MASK_AVERAGE } ntk_ntk_network;
typedef enum { NTK_FOURIER_EXACT, NTK_FOURIER_LIMIT } ntk_fourier_kernel;
typedef enum { NTK_OPT_GD, NTK_OPT_SGD } ntk_optimizer;
typedef enum { NTK_MEASURE_LOG, NTK_MEASURE_EVERY, NTK_MEASURE_LIST } ntk_measure_schedule;

typedef struct {
  char source[NTK_PATH_MAX]; /* the YAML file, for messages ("<none>" if none) */
  uint64_t seed;
  int verbosity;

  struct {
    int width;           /* n */
    int depth;           /* L */
    int activation;      /* ntk_activation */
    double leaky_slope;  /* leaky_relu: sigma(x) = x for x > 0, slope * x below */
    double weight_std;   /* sigma_w */
    double bias_std;     /* sigma_b */
  } model;
  struct {
    int features;   /* m; 0 = raw inputs */
    double scale;   /* s */
    int trainable;  /* bool */
    int project;    /* bool */
  } fourier;
  struct {
    double alpha;
    int schedule; /* ntk_alpha_schedule */
    double power; /* gamma for the power schedule */
    int skip;     /* bool; false = plain MLP baseline */
  } residual;
  struct {
    double survival;   /* p */
    int schedule;      /* ntk_survival_schedule */
    int mask[NTK_MAX_LIST]; /* explicit mask for ntk.network: mask (0/1 per block) */
    int mask_len;      /* 0 = draw the step-0 training mask from the generator */
  } depth;
  struct {
    int source; /* ntk_data_source */
    int n_train;
    int n_test;
    int dim;       /* d for synthetic sources (synthetic_1d forces 1) */
    int outputs;   /* k for the teacher source */
    double noise;  /* label noise std for synthetic sources */
    char path[NTK_PATH_MAX]; /* fashion_mnist folder or user HDF5 file */
    int classes[NTK_MAX_LIST]; /* fashion_mnist class subset */
    int n_classes;             /* 0 = all ten */
    int standardize;           /* bool */
  } data;
  struct {
    int method;       /* ntk_ntk_method */
    int network;      /* ntk_ntk_network */
    int mask_samples; /* for mask_average */
    int top_k;        /* 0 = all eigenvalues */
    double chunk_mb;  /* jacobian method: memory bound per parameter chunk and rank */
  } ntk;
  struct {
    char type[32]; /* name in the eigensolver table: pdsyevr, pdsyevd, ... */
    /* ntk.method matrix_free: */
    char matrix_free[32]; /* name in the matrix-free table (ntk_eigs): krylovschur, ... */
    double tol;           /* relative residual ||Theta u - lambda u|| / |lambda| */
    int max_it;           /* restarts; 0 = SLEPc's default */
    int ncv;              /* basis vectors; 0 = SLEPc's default max(2K, K + 15) */
    int frobenius_probes; /* Hutchinson probes for ||Theta||_F; 0 = none (NaN) */
  } eigensolver;
  struct {
    int rows, cols;   /* 0 = choose from the rank count */
    int block_size;
  } grid;
  struct {
    char path[NTK_PATH_MAX];
    int save_data, save_params, save_ntk, save_eigenvectors; /* bools */
    int overwrite; /* bool */
  } output;
  struct {
    int enabled;          /* bool */
    int fourier;          /* ntk_fourier_kernel */
    int quadrature_order; /* 0: error-controlled expectations; > 0: fixed Gauss-Hermite order */
    int enumerate_depth;  /* exact mask enumeration up to this depth, Monte Carlo beyond */
    int mask_samples;     /* Monte Carlo masks beyond enumerate_depth */
  } analytic;
  struct {
    int steps;             /* 0 = no training: the trajectory is step 0 alone */
    int optimizer;         /* ntk_optimizer */
    int batch_size;        /* sgd: samples per step; 0 with gd */
    double lr;             /* > 0: the learning rate eta itself; 0: from lr_scale */
    double lr_scale;       /* eta = lr_scale * 2N / lambda_max(Theta_0) */
    int measure;           /* ntk_measure_schedule */
    int measure_every;     /* every: k */
    int measure_points;    /* log: number of log-spaced steps in 1..steps */
    int measure_steps[NTK_MAX_LIST]; /* list: explicit steps */
    int measure_steps_len;
    double divergence_factor; /* diverged when train loss > factor * initial loss */
    int checkpoint_every;  /* steps between periodic checkpoints, 0 = only on a signal */
    char checkpoint[NTK_PATH_MAX]; /* checkpoint file; empty = output.path + ".ckpt" */
  } train;
  struct {
    double limit_mb; /* per rank; 0 = automatic (SLURM, else the node's memory / local ranks) */
  } memory;
} ntk_config;

typedef enum {
  NTK_KEY_INT,
  NTK_KEY_UINT64,
  NTK_KEY_DOUBLE,
  NTK_KEY_BOOL,
  NTK_KEY_STRING,
  NTK_KEY_ENUM,
  NTK_KEY_INT_LIST
} ntk_key_type;

typedef struct {
  const char *name;       /* dotted path, e.g. "model.width" */
  ntk_key_type type;
  size_t offset;          /* into ntk_config */
  size_t len_offset;      /* INT_LIST: offset of its length field */
  const char *def;        /* default as text */
  double min, max;        /* numeric range (inclusive); for lists, each element */
  const char *const *choices; /* ENUM: NULL-terminated names, index = value */
  const char *doc;
} ntk_config_key;

extern const ntk_config_key ntk_config_keys[];
extern const int ntk_config_nkeys;

/* Defaults for every key. */
void ntk_config_defaults(ntk_config *cfg);
/* Load YAML (path) over the defaults; errors are NTK_ERR_INPUT with a one-line message
 * "FILE:LINE: KEY: what is wrong (allowed: ...)". Not collective: every rank may call it. */
int ntk_config_load(const char *path, ntk_config *cfg);
/* The stored configuration (the `config` attribute of a result file or checkpoint,
 * ntk_config_to_yaml's text) over the defaults, by the same loader as files.  Written by
 * another version it may hold keys this build does not know or values it refuses: those
 * are skipped, so given[i] (NULL, or one flag per row of ntk_config_keys) says which keys
 * the text set.  Only a text that is not YAML, is not a mapping or nests too deep fails
 * (NTK_ERR_INPUT, "LABEL:LINE: ..."). Not collective; leaves the origins of the last
 * ntk_config_load (its validator messages) alone. */
int ntk_config_from_text(const char *text, const char *label, ntk_config *cfg,
                         unsigned char given[NTK_CONFIG_MAX_KEYS]);
/* Apply one "key.path=value" override (from --set). */
int ntk_config_set(ntk_config *cfg, const char *assignment);
/* Cross-key checks (e.g. project: false needs width == 2*features). */
int ntk_config_validate(ntk_config *cfg);
/* The effective configuration as YAML text (malloc'd, caller frees). */
char *ntk_config_to_yaml(const ntk_config *cfg);
/* Name of an enum value of key `key` (e.g. "model.activation", NTK_ACT_RELU -> "relu"). */
const char *ntk_config_enum_name(const char *key, int value);
/* Names of the derived quantities used by several modules. */
double ntk_config_alpha(const ntk_config *cfg, int l);    /* alpha_l, l = 1..L */
double ntk_config_survival(const ntk_config *cfg, int l); /* p_l,     l = 1..L */
/* The shapes of the network on d-dimensional inputs (MODEL.md): p = dim phi(x) = 2 *
 * fourier.features, or d for raw inputs; n = model.width, or p when fourier.project is
 * false (h0 = phi(x), the validator makes model.width agree). */
int ntk_config_input_dim(const ntk_config *cfg, int d);   /* p */
int ntk_config_width(const ntk_config *cfg, int d);       /* n */
/* Whether a measurement keeps the top-K eigenvectors: training (the residual energies,
 * the predictions), output.save_eigenvectors, or matrix-free Hutchinson probes (they
 * deflate the top K). */
int ntk_config_wants_eigenvectors(const ntk_config *cfg);

/* Helpers over the key table (added by the config module). */
/* A key's min equal to this means "strictly greater than 0" (the range is otherwise
 * inclusive); a max of INT_MAX / DBL_MAX means unbounded above. */
#define NTK_KEY_MIN_POSITIVE DBL_MIN
/* The row of a dotted key name, NULL if there is none. */
const ntk_config_key *ntk_config_find_key(const char *name);
/* The closest key or section name to a misspelt one ("model.widht" -> "model.width"),
 * NULL when nothing is close enough to be a useful suggestion. */
const char *ntk_config_suggest(const char *name);
/* Human-readable allowed values of a key (">= 1", "0 .. 2", "relu, erf, ...") into buf. */
void ntk_config_allowed(const ntk_config_key *key, char *buf, size_t n);
/* The value of a key in cfg as YAML scalar/flow text into buf. */
void ntk_config_value_text(const ntk_config *cfg, const ntk_config_key *key, char *buf,
                           size_t n);
/* First key whose value differs between a and b, NULL if none (source is not compared). */
const char *ntk_config_diff(const ntk_config *a, const ntk_config *b);
/* Like ntk_config_to_yaml, with each key's doc and allowed values as a trailing comment. */
char *ntk_config_to_yaml_commented(const ntk_config *cfg);

#endif
