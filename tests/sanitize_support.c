/* Linked into every executable of the sanitizer build (NTK_SANITIZE / NTK_FUZZ) only.
 *
 * Open MPI loads its components with dlopen and unloads them in MPI_Finalize, before the
 * LeakSanitizer check at exit: a leak inside a component then has an "<unknown module>"
 * stack that no suppression can name, and the run fails on MPI's leaks instead of ours.
 * Keeping every shared object mapped until exit lets tests/lsan.supp suppress MPI's
 * internals by module name while any leak in ntkspec code is still reported.  Unloading
 * is only ever an optimisation, so a no-op is a faithful dlclose for these builds. */
int dlclose(void *handle);
int dlclose(void *handle) {
  (void)handle;
  return 0;
}
