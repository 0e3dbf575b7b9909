/* ntk_output_impl: what the io layer's output files share and nobody above may use (this
 * header is private to src/io): HDF5 error conversion and property lists (ntk_output_h5.c),
 * the disk claims and folder checks (ntk_output_disk.c), the dataset primitives and
 * collective writes (ntk_output_write.c) that the appends (ntk_output_append.c), the file
 * life cycle (ntk_output_file.c) and /timing build on. */
#ifndef NTK_OUTPUT_IMPL_H
#define NTK_OUTPUT_IMPL_H
#include "ntk_output.h"

#define NTK_MIB (1024.0 * 1024.0)
#define NTK_OUT_PATH 1024 /* output paths are shorter (set_paths) */

/* ---- ntk_output_h5.c ---- */
/* An HDF5 failure as the run's error: the innermost HDF5 message, `file` (may be NULL)
 * named, with the cause of a failed write (a full disk) when there is one. */
int ntk_h5_fail_in(const char *file, const char *what, const char *name);
int ntk_h5_fail(const char *what, const char *name);
/* The same on the open file `o`, which is then marked broken (see ntk_output_close). */
int ntk_h5_fail_o(ntk_output *o, const char *what, const char *name);
/* Inside functions that have the ntk_output `o`, an `int rc` and a `done:` label. */
#define H5TRY(expr, what, name)                \
  do {                                         \
    if ((expr) < 0) {                          \
      rc = ntk_h5_fail_o(o, (what), (name));   \
      goto done;                               \
    }                                          \
  } while (0)
void ntk_h5_close(hid_t id); /* any kind of id; negative ids are ignored */
int ntk_out_is_open(const ntk_output *o);
int ntk_out_not_open(const char *what);
hid_t ntk_h5_fapl(MPI_Comm comm); /* MPI-IO, collective metadata */
hid_t ntk_h5_dxpl(void);          /* collective transfers */
hid_t ntk_h5_lcpl(void);          /* intermediate groups created */
hid_t ntk_h5_vlstr(void);         /* variable-length UTF-8 string */
int ntk_h5_link_exists(hid_t file, const char *name); /* 1, 0, <0 error */
hid_t ntk_h5_file_type(hid_t mtype);                  /* little-endian file type */
/* Serially (no MPI-IO): the root `status` and `last_step` (-1 when absent) of an ntkspec
 * file; -1 when the file or its status cannot be read. */
int ntk_h5_peek_status(const char *path, char *status, size_t n, long long *last_step);

/* ---- ntk_output_disk.c ---- */
double ntk_disk_free_bytes(const char *dir); /* < 0 when unknown */
int ntk_out_exists(const char *p);
int ntk_out_check_folder(const char *path); /* rank 0 */
double ntk_out_padded(int x);               /* to the 256-wide chunks of appended matrices */
int ntk_out_claim_result(ntk_output *o, int e);
int ntk_out_claim(ntk_output *o, double bytes); /* collective */
void ntk_out_release_claim(ntk_output *o, const char *path);
/* Rank 0: whether `path` may be replaced or removed (absent or a regular file). */
int ntk_out_check_replaceable(const char *key, const char *path);

/* ---- ntk_output_write.c ---- */
int ntk_out_attr_write_claimed(ntk_output *o, const char *obj, const char *name, hid_t type,
                               const void *buf);
int ntk_out_dset_create(ntk_output *o, const char *name, hid_t mtype, int rank,
                        const hsize_t *dims, const hsize_t *maxd, const hsize_t *chunk, int large,
                        hid_t *d);
int ntk_out_dset_lookup(ntk_output *o, const char *name, hid_t *d, int *rank, hsize_t *dims,
                        hsize_t *maxd);
int ntk_out_dset_ensure(ntk_output *o, const char *name, hid_t mtype, int rank,
                        const hsize_t *dims, int large, hid_t *d);
int ntk_out_write_dmat_into(ntk_output *o, hid_t d, const char *name, long long lead,
                            const ntk_dmat *A);
/* File selection of A's local rows [l0, l1) x all its local columns, in slice `lead` of
 * a 3-D dataset or in a 2-D one (lead < 0); shared by the writes and ntk_input's reads. */
herr_t ntk_out_select_local_rows(hid_t fs, long long lead, const ntk_dmat *A, int l0, int l1);
int ntk_out_check_grid(const ntk_output *o, const ntk_dmat *A, const char *name);
int ntk_out_write_rank0(ntk_output *o, hid_t d, const char *name, hid_t mtype, int mrank,
                        const hsize_t *mdims, const hsize_t *start, const hsize_t *count,
                        const void *buf);

#endif
