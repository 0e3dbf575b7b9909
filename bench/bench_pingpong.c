/* Point-to-point benchmark of the transport: the network parameters of the performance
 * model measured directly, not from ntkspec runs (scripts/shaped-scaling.sh,
 * docs/SCALING.md "Shaped links").
 *   mpirun -np P bench_pingpong [repeats] [max_bytes] [min_bytes] [idle_ms]
 *   P even; defaults: 200, 16 MiB, 8, 0
 * Ranks 2i and 2i+1 form a pair, and all pairs run at once (with more ranks than cores,
 * the latency a message sees when its receiver has to be scheduled first).  For each size:
 * the one-way time (half of the best and of the median round trip of a ping-pong), and the
 * time of an exchange where both ranks of a pair send and receive at once (MPI_Sendrecv,
 * what a 2-rank allgather does), as bytes per second each way; times are pair (0, 1)'s,
 * exchanges the slowest pair's.  Sizes are 8 * 4^k from min_bytes to max_bytes: on a slow
 * shaped link, min_bytes skips the small sizes' many repeats when only the large rows are
 * wanted.  The repeats run back to back, so a size's repeats past tc tbf's burst show the
 * link's sustained rate; idle_ms > 0 leaves the link idle that long before each exchange
 * (over TCP on a shaped link, one connection per pair, a 2 MiB exchange after 100 ms of
 * idle runs both directions at once, back to back they take turns: docs/SCALING.md, run5).
 * Output is one line per size:
 * "bytes half_rtt_min half_rtt_median exchange_s exchange_bytes_per_s". */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int reps = argc > 1 ? atoi(argv[1]) : 200;
  const long maxb = argc > 2 ? atol(argv[2]) : 16L << 20;
  const long minb = argc > 3 ? atol(argv[3]) : 8;
  const long idle_ms = argc > 4 ? atol(argv[4]) : 0;
  if (size < 2 || size % 2 || reps < 1 || maxb < 8 || minb < 8 || minb > maxb || idle_ms < 0 ||
      idle_ms > 60000) {
    if (rank == 0)
      fprintf(stderr, "usage: mpirun -np P bench_pingpong [repeats >= 1] [max_bytes >= 8] "
                      "[min_bytes in 8..max_bytes] [idle_ms in 0..60000], P even\n");
    MPI_Finalize();
    return 2;
  }
  char *sbuf = malloc((size_t)maxb), *rbuf = malloc((size_t)maxb);
  double *t = malloc(sizeof(double) * (size_t)reps);
  int ok = sbuf && rbuf && t, all;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!all) {
    if (rank == 0) fprintf(stderr, "bench_pingpong: out of memory for %ld-byte buffers\n", maxb);
    MPI_Finalize();
    return 1;
  }
  memset(sbuf, 1, (size_t)maxb);
  const int peer = rank ^ 1;
  if (rank == 0) printf("# bytes half_rtt_min_s half_rtt_median_s exchange_s exchange_bytes_per_s\n");
  for (long b = 8; b <= maxb; b *= 4) {
    if (b < minb) continue;
    /* large messages take long on a shaped link: fewer repeats, at least 3 */
    int r = b >= (1L << 20) ? 3 + reps / 50 : reps;
    if (r > reps) r = reps;
    for (int i = -1; i < r; ++i) { /* i = -1: warm-up (connection set-up) */
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      if (rank % 2 == 0) {
        MPI_Send(sbuf, (int)b, MPI_BYTE, peer, 0, MPI_COMM_WORLD);
        MPI_Recv(rbuf, (int)b, MPI_BYTE, peer, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      } else {
        MPI_Recv(rbuf, (int)b, MPI_BYTE, peer, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(sbuf, (int)b, MPI_BYTE, peer, 0, MPI_COMM_WORLD);
      }
      if (i >= 0) t[i] = (MPI_Wtime() - t0) / 2.0;
    }
    qsort(t, (size_t)r, sizeof(double), cmp);
    const double hmin = t[0], hmed = t[r / 2];
    for (int i = -1; i < r; ++i) {
      MPI_Barrier(MPI_COMM_WORLD);
      if (idle_ms > 0) {
        const struct timespec ts = {idle_ms / 1000, (idle_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
      }
      double t0 = MPI_Wtime();
      MPI_Sendrecv(sbuf, (int)b, MPI_BYTE, peer, 1, rbuf, (int)b, MPI_BYTE, peer, 1, MPI_COMM_WORLD,
                   MPI_STATUS_IGNORE);
      double dt = MPI_Wtime() - t0, dmax;
      MPI_Allreduce(&dt, &dmax, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      if (i >= 0) t[i] = dmax;
    }
    qsort(t, (size_t)r, sizeof(double), cmp);
    if (rank == 0) printf("%ld %.3e %.3e %.3e %.4g\n", b, hmin, hmed, t[r / 2], b / t[r / 2]);
  }
  free(sbuf);
  free(rbuf);
  free(t);
  MPI_Finalize();
  return 0;
}
