/* ntkspec-h5check FILE: reads the metadata of the HDF5 file FILE (ntk_h5check_walk) and
 * exits 0, or dies by the signal HDF5 crashed with.  ntkspec starts it (ntk_h5check_file)
 * before it opens a file that may be corrupt; it never starts MPI. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "ntk_h5check.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: ntkspec-h5check FILE.h5 (run by ntkspec: exit 0 unless HDF5 crashes)\n");
    return 2;
  }
  /* a crash must end this process by its signal, which the caller reads: no handler of a
   * sanitizer or of Open MPI's libraries may turn it into a report or an exit status */
  const int crashes[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
  for (size_t i = 0; i < sizeof crashes / sizeof crashes[0]; ++i) signal(crashes[i], SIG_DFL);
  ntk_h5check_walk(argv[1]);
  /* _exit: HDF5's and a leak checker's exit handlers have nothing to add */
  fflush(NULL);
  _exit(0);
}
