/* ntk_input: reading back a file ntkspec wrote (a checkpoint), collectively over MPI-IO:
 * every rank reads its own blocks of a distributed matrix (the inverse of
 * ntk_output_write_dmat) and the small replicated values whole.  The file is first walked
 * by the corrupt-file checker (ntk_h5check) on rank 0; every failure is NTK_ERR_INPUT
 * naming the file by `label` ("checkpoint PATH: has no attribute step").  Each call is
 * made by every rank in the same order (collective metadata reads). */
#ifndef NTK_INPUT_H
#define NTK_INPUT_H
#include <hdf5.h>
#include "ntk_grid.h"

typedef struct {
  hid_t f;
  char label[1100];
} ntk_input;

/* Collective: open PATH read-only; `label` names it in every message. */
int ntk_input_open(ntk_input *in, MPI_Comm comm, const char *path, const char *label);
void ntk_input_close(ntk_input *in);

/* A string attribute of the root (malloc'd into *out). */
int ntk_input_attr_string(ntk_input *in, const char *name, char **out);
/* A numeric attribute of object `obj` ("/" for the root). */
int ntk_input_attr_int(ntk_input *in, const char *obj, const char *name, long long *v);
int ntk_input_attr_double(ntk_input *in, const char *obj, const char *name, double *v);
/* A replicated dataset of exactly n values, read whole by every rank. */
int ntk_input_read_array(ntk_input *in, const char *name, long long n, double *x);
/* This rank's blocks of A from the 2-D dataset `name`, or slice `lead` of a 3-D one. */
int ntk_input_read_dmat(ntk_input *in, const char *name, long long lead, ntk_dmat *A);

#endif
