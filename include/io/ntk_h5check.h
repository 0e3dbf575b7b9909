/* ntk_h5check: reading HDF5 files that may be corrupt (user data, checkpoints, a file to
 * resume, `ntkspec info`).  HDF5 1.10 crashes on some corrupt files instead of returning
 * an error: on damaged metadata (a local heap, a symbol table) anywhere in H5Fopen,
 * H5Lexists or H5Dopen, and in H5Dread on a compact dataset that stores fewer bytes than
 * its shape needs.  The first is caught by walking the file's metadata in a separate
 * process (the checker, `ntkspec-h5check`, installed next to ntkspec) before the caller
 * touches it; the second by ntk_h5check_dataset_intact before each read. */
#ifndef NTK_H5CHECK_H
#define NTK_H5CHECK_H
#include <hdf5.h>

/* Serial: whether HDF5 survives reading every object header, attribute value, datatype,
 * dataspace and chunk index of PATH with the serial driver.  A checker killed by a signal
 * is NTK_ERR_INPUT "LABEL: HDF5 crashed (...) reading its metadata: the file is corrupt";
 * everything else is NTK_OK, files HDF5 merely refuses included: the caller's own open
 * reports those in its own words.  Without a checker (no ntkspec-h5check next to the
 * running program and none set) the walk runs in this process, unprotected. */
int ntk_h5check_file(const char *path, const char *label);

/* The checker executable to spawn (NULL or "": walk in this process).  Default: the
 * ntkspec-h5check in the running program's folder, if there is one. */
void ntk_h5check_set_checker(const char *exe);

/* The walk itself (the checker's body): opens PATH read-only and reads its metadata;
 * returns normally whatever HDF5 says, unless HDF5 crashes. */
void ntk_h5check_walk(const char *path);

/* Whether dataset `d`'s stored values fill its shape (1) or not (0): a compact dataset
 * must store exactly its shape's bytes, and no dimension may exceed its maximum (both
 * only in corrupt files).  Contiguous and chunked storage HDF5 bounds-checks itself. */
int ntk_h5check_dataset_intact(hid_t d);
/* The same as an error: NTK_OK, or NTK_ERR_INPUT "LABEL: NAME is corrupt (...)". */
int ntk_h5check_dataset(hid_t d, const char *label, const char *name);

#endif
