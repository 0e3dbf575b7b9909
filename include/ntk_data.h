/* ntk_data: the training and test sets as distributed matrices.  Sources: synthetic
 * (synthetic_1d, teacher, sphere; generated in parallel from the counter-based generator,
 * each rank computing only its own entries), Fashion-MNIST (Debian's
 * dataset-fashion-mnist gzip IDX files, subset, class subset, one-hot, standardisation),
 * and user HDF5 files (datasets x (N, d) and y (N, k), each rank reading only its rows).
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

/* Collective. */
int ntk_data_load(const ntk_config *cfg, const ntk_grid *g, ntk_data *data);
void ntk_data_free(ntk_data *data);
/* Shape of the data a config asks for, without loading it (for --dry-run and checks):
 * reads only headers of files. Not collective. */
int ntk_data_shape(const ntk_config *cfg, int *n_train, int *n_test, int *d, int *k);

#endif
