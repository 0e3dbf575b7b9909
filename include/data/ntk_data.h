/* ntk_data: the training and test sets as distributed matrices.  Sources: synthetic
 * (synthetic_1d, teacher, sphere; generated in parallel from the counter-based generator,
 * each rank computing only its own entries), Fashion-MNIST (Debian's
 * dataset-fashion-mnist gzip IDX files, subset, class subset, one-hot, standardisation),
 * and user HDF5 files (datasets x (N, d) and y (N, k), each rank reading only its rows;
 * a root attribute classification = 1 marks y as one-hot classes).
 * Non-finite values and shape mismatches are input errors (NTK_ERR_INPUT), agreed across
 * ranks so that all exit together with one message. */
#ifndef NTK_DATA_H
#define NTK_DATA_H
#include "ntk_config.h"
#include "ntk_grid.h"

typedef struct {
  int n_train, n_test; /* N and the test-set size (may be 0) */
  int d, k;            /* input dimension and number of outputs */
  int classification;  /* targets are one-hot over k classes: report accuracy */
  ntk_dmat x_train;    /* N x d */
  ntk_dmat y_train;    /* N x k */
  ntk_dmat x_test;     /* n_test x d (unallocated, a == NULL, when n_test == 0) */
  ntk_dmat y_test;     /* n_test x k */
  char description[256];
} ntk_data;

/* Collective.  Sizes: data.n_train >= 1 and data.n_test >= 0 rows (0 = no test set) for
 * the synthetic sources and fashion_mnist; for hdf5, n_train = 0 takes every row of "x"
 * and n_test = 0 every row of "x_test" (none if the file has no "x_test").  Asking for
 * more rows than a source holds is an input error.  HDF5 datasets may have any numeric
 * type (converted to double); a 1-D dataset counts as one column.  Each rank reads only
 * the row blocks it owns, through MPI-IO, with one collective read per dataset.
 * Synthetic data, entry by entry a pure function of (seed, stream, row, column, c) with
 * c = 0 for the training set and 1 for the test set (x: NTK_STREAM_DATA_X, label noise
 * N(0, data.noise^2): NTK_STREAM_DATA_NOISE with b = output):
 *   synthetic_1d  d = k = 1, x = 2u - 1 (u uniform), y = sin(2 pi x) + 0.5 sin(2 pi 8 x);
 *   teacher       x ~ N(0, I/d), y_c = sum_h a_ch tanh(sqrt(d) w_h . x) / sqrt(32), 32 hidden
 *                 units, w_h ~ N(0, I/d) (a = h, b = feature, c = 0) and a_ch ~ N(0, 1)
 *                 (a = c, b = h, c = 1) from NTK_STREAM_TEACHER, so sqrt(d) w_h . x ~ N(0, 1);
 *   sphere        x = g/|g| with g ~ N(0, I_d) (uniform on S^{d-1}, d >= 2),
 *                 y = x_1 + sqrt(d) x_1 x_2 (columns 0 and 1).
 * Fashion-MNIST: the first n_train (n_test) examples of the selected classes in file
 * order, pixels / 255; with data.standardize each pixel becomes (x - mean)/std over the
 * selected training rows (population std), computed from exact integer pixel sums, so
 * the data are bitwise the same for any grid; pixels constant over the training rows
 * become 0 in both sets. Targets one-hot in the order of data.classes. */
int ntk_data_load(const ntk_config *cfg, const ntk_grid *g, ntk_data *data);
void ntk_data_free(ntk_data *data);
/* Shape of the data a config asks for, without loading it (for --dry-run and checks):
 * reads only headers of files (and, for Fashion-MNIST, the small label files, to count
 * the examples of the selected classes). Not collective. */
/* Bytes of the loaded data on process (0, 0) (x, y, train and test), for the memory
 * estimate; saturating. */
int64_t ntk_data_memory(const ntk_grid *g, int n_train, int n_test, int d, int k);
int ntk_data_shape(const ntk_config *cfg, int *n_train, int *n_test, int *d, int *k);

/* IDX files (the MNIST format), gzip-compressed or plain: a 4-byte magic (0, 0, type,
 * rank), rank big-endian uint32 dimensions, then the items (slices along dimension 0).
 * Only unsigned bytes (type 0x08) and ranks 1 to 4 are accepted.  Any malformed,
 * truncated or over-long file is NTK_ERR_INPUT with a one-line message naming the file.
 * Memory grows with the data actually present, never with what a header claims. */
typedef struct {
  int ndim;
  int dims[4];          /* dims[0] = number of items in the file */
  size_t item_size;     /* bytes per item: the product of dims[1..ndim-1] */
  int nitems;           /* items held in data */
  unsigned char *data;  /* nitems * item_size bytes, the selected items in file order */
} ntk_idx;

/* Read `path`, keeping the nsel items listed (strictly increasing indices), or every item
 * when items == NULL.  The whole file is always read through, to validate its size. */
int ntk_idx_read(const char *path, int nsel, const int *items, ntk_idx *idx);
/* Only the magic and the dimensions (data stays NULL). */
int ntk_idx_read_header(const char *path, ntk_idx *idx);
/* The same parser on bytes in memory (uncompressed); `name` is used in messages. */
int ntk_idx_parse(const unsigned char *buf, size_t len, const char *name, int nsel,
                  const int *items, ntk_idx *idx);
void ntk_idx_free(ntk_idx *idx);

#endif
