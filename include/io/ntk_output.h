/* ntk_output: the parallel HDF5 result file, its names from ntk_schema.  Created
 * collectively with MPI-IO as PATH.partial (valid HDF5 from its first byte: made as
 * PATH.partial.new and renamed after its first flush); distributed matrices are written
 * straight from the block-cyclic layout by every rank (collective hyperslab writes);
 * replicated data is written by rank 0 inside collective calls.  Trajectory datasets are
 * chunked and extendible: each measurement appends one row per schema series and flushes,
 * so a killed run keeps every completed step.  ntk_output_close sets the `status`
 * attribute and renames the file to PATH; a run that fails keeps only PATH.partial (never
 * a complete-looking file).  Only regular files are replaced or removed; one run per path
 * (the output lock).  Disk space is checked before any compute and claimed ahead of every
 * write (below).  The size estimate and /timing are in ntk_output_estimate.h and
 * ntk_output_timing.h, the reads of a checkpoint in ntk_input.h; the sources are
 * src/io/ntk_output_*.c, one per concern. */
#ifndef NTK_OUTPUT_H
#define NTK_OUTPUT_H
#include <hdf5.h>
#include "ntk_grid.h"
#include "ntk_schema.h"

typedef struct {
  const ntk_grid *g;
  hid_t file;
  char path[1024];
  char partial[1048];
  char creating[1048]; /* PATH.partial.new: the file until ntk_output_publish */
  int unpublished;     /* still under its .new name */
  long long nsteps; /* rows appended to /trajectory/step so far */
  /* rank 0: disk blocks claimed ahead of HDF5's writes (fallocate), up to `reserved`
   * bytes, through claim_fd; seen_size is the file's size at the last claim */
  double reserved, seen_size;
  int claim_fd;
  int no_reserve; /* the file system cannot claim space ahead */
  int broken;     /* an HDF5 call on the file failed: HDF5 cannot close it safely */
} ntk_output;

/* The folder of a file path ("." for a bare name, "/" for a file in the root). */
void ntk_path_dirname(const char *path, char *dir, size_t len);

/* Collective: one run per output path (docs/OUTPUT.md "Output lock"), taken by a command
 * before it removes, renames or creates anything at PATH and released after
 * ntk_output_close (the file functions themselves do not lock: a checkpoint, written under
 * its run's lock, needs none).  Rank 0 checks the folder and that PATH and PATH.partial
 * are regular or absent, then takes an fcntl write lock on PATH.lock, which records host,
 * pid, SLURM job and start time; a lock another live process holds is NTK_ERR_INPUT naming
 * that holder; a lock file whose holder is gone is taken over (a progress line says so).  Counted
 * per process; ntk_output_unlock removes PATH.lock when the count drops to 0 and does
 * nothing for a path this process does not hold. */
int ntk_output_lock(MPI_Comm comm, const char *path);
void ntk_output_unlock(MPI_Comm comm, const char *path);

/* Collective.  Fails (NTK_ERR_INPUT) if PATH exists and !overwrite, or the folder is not
 * writable (a probe file is created and removed there); removes a stale PATH.partial.
 * Writes format, format_version, version and status = "running". */
int ntk_output_open(ntk_output *o, const ntk_grid *g, const char *path, int overwrite);
/* Collective: flush, then rename PATH.partial.new to PATH.partial (once the caller has
 * written what makes the file resumable, e.g. the configuration): a PATH.partial is thus
 * valid HDF5 with its provenance from its first byte.  No-op on a published file. */
int ntk_output_publish(ntk_output *o);
/* Collective: reopen an existing PATH.partial or PATH for appending (used by --resume). */
int ntk_output_reopen(ntk_output *o, const ntk_grid *g, const char *path);

/* Collective root (or group, when obj is a group path like "/analytic") attributes. */
int ntk_output_attr_string(ntk_output *o, const char *obj, const char *name, const char *value);
int ntk_output_attr_int(ntk_output *o, const char *obj, const char *name, long long value);
int ntk_output_attr_double(ntk_output *o, const char *obj, const char *name, double value);

/* Collective: the dmat A as a row-major (A->m, A->n) dataset `name` (parents created). */
int ntk_output_write_dmat(ntk_output *o, const char *name, const ntk_dmat *A);
/* Collective: A into slice `index` of a 3-D dataset (count, A->m, A->n), created on first
 * use with `count` slices (W (L, n, n)). */
int ntk_output_write_dmat_slice(ntk_output *o, const char *name, int count, int index,
                                const ntk_dmat *A);
/* Collective: replicated data (identical on all ranks), rank 0 writes.  rank 1: (n0),
 * rank 2: (n0, n1) row-major. */
int ntk_output_write_array(ntk_output *o, const char *name, int rank, const long long *dims,
                           const double *x);
int ntk_output_write_int_array(ntk_output *o, const char *name, long long n, const long long *x);
int ntk_output_write_strings(ntk_output *o, const char *name, int n, const char *const *s);

/* Trajectory: collective appends, one row per measurement.  Datasets are created on
 * first use with an unlimited first dimension. */
int ntk_output_append_scalar(ntk_output *o, const char *name, double value);
int ntk_output_append_int(ntk_output *o, const char *name, long long value);
int ntk_output_append_row(ntk_output *o, const char *name, int len, const double *row);
int ntk_output_append_dmat(ntk_output *o, const char *name, const ntk_dmat *A);
/* One measurement's row of the /trajectory series (ntk_schema_trajectory), filled with
 * the setters below; unset series are not written at this measurement. */
typedef struct {
  int set;        /* the ntk_series_kind the setter was for + 1; 0: not written */
  double x;       /* NTK_SERIES_SCALAR */
  long long i;    /* NTK_SERIES_INT */
  int len;        /* NTK_SERIES_ROW_*: `len` values at `row` */
  const double *row;
  const ntk_dmat *A; /* NTK_SERIES_NN, NTK_SERIES_NK */
} ntk_series_value;
void ntk_series_scalar(ntk_series_value *v, ntk_traj_id id, double x);
void ntk_series_int(ntk_series_value *v, ntk_traj_id id, long long i);
void ntk_series_row(ntk_series_value *v, ntk_traj_id id, int len, const double *row);
void ntk_series_dmat(ntk_series_value *v, ntk_traj_id id, const ntk_dmat *A);
/* Collective: append every set series of v[NTK_TRAJ_COUNT] in the schema's order, then
 * flush.  A value set with the wrong setter for its series is NTK_ERR_INTERNAL. */
int ntk_output_append_measurement(ntk_output *o, const ntk_series_value *v);
/* Collective: the whole /trajectory/step column (rows values; *steps malloc'd, NULL when
 * rows is 0), read by every rank; for --resume. */
int ntk_output_read_steps(ntk_output *o, long long **steps, long long *rows);
/* Collective: an integer root attribute, `dflt` when the file does not have it. */
int ntk_output_attr_get_int(ntk_output *o, const char *name, long long dflt, long long *value);
/* Collective H5Fflush. */
int ntk_output_flush(ntk_output *o);

/* Collective: set status, close; rename PATH.partial -> PATH unless status is "failed".
 * The file is flushed with status still "running" before the final status is set, and the
 * rename happens only when every write, the flush and H5Fclose succeeded on every rank: a
 * failed close (e.g. the disk filled up) leaves only PATH.partial, not "complete".  Safe to
 * call on an unopened/failed ntk_output (file < 0). */
int ntk_output_close(ntk_output *o, const char *status);
/* Collective: close a file this run created and remove its PATH.partial: a run stopped by a
 * signal before it had anything worth keeping leaves no file (not even a "failed" one). */
int ntk_output_discard(ntk_output *o);

/* Additions.
 * Notes on the calls above: appends do not flush; the caller calls ntk_output_flush after
 * each measurement's group of appends, and a killed run then leaves PATH.partial readable
 * with every flushed row (HDF5 1.10 can leave unflushed metadata half-written).  With
 * overwrite, ntk_output_open removes an existing PATH at once, so a run that then fails
 * leaves no complete-looking file.  A refused reopen (not an ntkspec file) gives PATH its
 * name back.  String datasets are fixed-length (parallel HDF5 cannot write
 * variable-length data); string attributes are variable-length UTF-8 (h5py: str). */
/* Collective: rows (first dimension) of dataset `name`, 0 when it does not exist; used by
 * --resume to see how far each trajectory got. */
int ntk_output_rows(ntk_output *o, const char *name, long long *rows);
/* Collective: shrink an appended dataset to its first `rows` rows (a resume that restarts
 * from an earlier step drops the rows after it). */
int ntk_output_truncate(ntk_output *o, const char *name, long long rows);
/* Bytes of the per-rank staging buffer for dmat writes (default 64 MiB): a larger local
 * block is written in several collective rounds.  Tuning and tests only. */
void ntk_output_set_write_buffer(size_t bytes);
/* Bytes of that staging buffer a write of a matrix with `local_bytes` on this rank holds
 * (the memory estimate's "output write staging"). */
int64_t ntk_output_stage_bytes(int64_t local_bytes);

/* Disk space and the output folder, checked before any compute (issue 7, docs/HARDENING.md
 * "Faults").  During the run every write first claims its disk blocks (fallocate with
 * FALLOC_FL_KEEP_SIZE, by rank 0, from the file's end for the bytes to write + 1 MiB for
 * metadata): a disk that filled up meanwhile is then an NTK_ERR_RUNTIME on every rank
 * ("cannot write PATH.partial: No space left on device ..."), raised before HDF5 writes
 * anything, so the file stays consistent, closes with status "failed" and keeps every
 * flushed measurement.  Where space cannot be claimed ahead (a file system without
 * fallocate) a write can fail inside HDF5; HDF5 1.10 cannot close a parallel file after
 * that (its ranks may wait in different collectives forever), so ntk_output_close then
 * prints the error line and ends the job with MPI_Abort, leaving PATH.partial as last
 * flushed.  The extra claimed blocks are released when the file is closed. */
/* Collective, before any data is loaded: rank 0 checks the output folder of `path` and all
 * ranks share its verdict (NTK_ERR_INPUT, one line): the folder exists, a probe file can be
 * created and removed in it (a read-only mount is refused also for root, whom access(2)
 * lets write anywhere else), PATH is absent unless overwrite (not with resume), and `bytes`
 * fit in its free space (statvfs f_bavail, plus what the run will replace: PATH with
 * overwrite, a stale PATH.partial; with resume only what the existing file lacks).  PATH
 * and PATH.partial must be regular files or absent.  With resume, a PATH whose status is
 * "complete" at a last_step >= `steps` (train.steps: nothing left to do) or "diverged" is
 * refused naming its status.  With dry_run it prints the estimate and the free space and
 * never fails. */
int ntk_output_precheck(MPI_Comm comm, const char *path, int overwrite, int resume,
                        long long steps, double bytes, int dry_run);
/* Collective, before anything is written: the output (PATH and PATH.partial), the input
 * `data` and the checkpoint `ckpt` (either may be NULL or "") must be three different files
 * (the same device and inode, or the same folder and name where a file does not exist yet,
 * is refused: NTK_ERR_INPUT, one line). */
int ntk_output_check_distinct(MPI_Comm comm, const char *out, const char *data, const char *ckpt);

#endif
