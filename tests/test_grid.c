/* Process grid and block-cyclic matrices (ntk_grid).
 *
 * Usage: mpirun -np P test_grid ROWS COLS.  Each test runs on the ROWS x COLS grid with
 * block sizes 2, 3 and 64 (64 leaves some processes without rows or columns for the small
 * shapes used here).  Entries come from closed-form functions of the global indices, so
 * every rank computes the serial reference for its own entries.  Checks are counted per
 * rank and summed at the end of each test, so that no rank leaves a collective early. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_error.h"
#include "ntk_grid.h"
#include "ntk_log.h"
#include "ntk_mpi_cmocka.h"

/* rounding of a length-k dot product is below k * eps * sum |terms|; 1e-12 is far above */
#define REL 1e-12

static void create(const ntk_grid *g, int m, int n, ntk_dmat *A) {
  assert_int_equal(ntk_dmat_create(g, m, n, A), NTK_OK);
}

/* ctx points to the seed */
static double rnd(int i, int j, void *ctx) {
  return hash_uniform((uint64_t)i, (uint64_t)j, *(const uint64_t *)ctx);
}

/* exactly representable and unique per entry */
static double tag(int i, int j, void *ctx) {
  (void)ctx;
  return 1000.0 * i + j + 0.25;
}

static double local_at(const ntk_dmat *A, int il, int jl) { return A->a[il + (size_t)jl * A->lld]; }

/* ---------------------------------------------------------------------------------- */

static void test_choose(void **state) {
  (void)state;
  static const int table[][3] = {{1, 1, 1}, {2, 2, 1}, {3, 3, 1},  {4, 2, 2},  {5, 5, 1},
                                 {6, 3, 2}, {8, 4, 2}, {9, 3, 3},  {12, 4, 3}, {16, 4, 4},
                                 {18, 6, 3}, {7, 7, 1}, {64, 8, 8}};
  for (size_t t = 0; t < sizeof table / sizeof table[0]; ++t) {
    int pr = 0, pc = 0;
    ntk_grid_choose(table[t][0], &pr, &pc);
    assert_int_equal(pr, table[t][1]);
    assert_int_equal(pc, table[t][2]);
  }
  for (int size = 1; size <= 200; ++size) {
    int pr = 0, pc = 0, best = 1;
    ntk_grid_choose(size, &pr, &pc);
    for (int d = 1; d * d <= size; ++d)
      if (size % d == 0) best = d;
    assert_int_equal(pr * pc, size);
    assert_int_equal(pc, best);
    assert_true(pc <= pr);
  }
}

/* ntk_grid_layout (grid.block_size 0 = automatic, grid.rows/cols 0 = automatic). */
static void layout(int size, int rows, int cols, int nb_in, int64_t m, int64_t n, int want_rc,
                   int want_pr, int want_pc, int want_nb) {
  int pr = -1, pc = -1, nb = -1;
  ntk_err_clear();
  int rc = ntk_grid_layout(size, rows, cols, nb_in, m, n, &pr, &pc, &nb);
  ntk_err_clear();
  if (rc != want_rc)
    fail_msg("layout(%d ranks, %dx%d, nb %d, %lld x %lld): rc %d, want %d", size, rows, cols,
             nb_in, (long long)m, (long long)n, rc, want_rc);
  if (rc) return;
  if (pr != want_pr || pc != want_pc || nb != want_nb)
    fail_msg("layout(%d ranks, %dx%d, nb %d, %lld x %lld): %dx%d nb %d, want %dx%d nb %d", size,
             rows, cols, nb_in, (long long)m, (long long)n, pr, pc, nb, want_pr, want_pc, want_nb);
}

static void test_layout(void **state) {
  (void)state;
  /* problems that fill the grid keep 64 */
  layout(1, 0, 0, 0, 24, 32, NTK_OK, 1, 1, 64);
  layout(4, 0, 0, 0, 4096, 512, NTK_OK, 2, 2, 64);
  layout(2, 0, 0, 0, 128, 512, NTK_OK, 2, 1, 64);
  /* the 24-sample config: the largest block that gives every process row one */
  layout(2, 0, 0, 0, 24, 32, NTK_OK, 2, 1, 12);
  layout(4, 0, 0, 0, 24, 32, NTK_OK, 2, 2, 12);
  layout(4, 0, 0, 0, 24, 16, NTK_OK, 2, 2, 8);
  layout(3, 0, 0, 0, 5, 8, NTK_OK, 3, 1, 2);
  layout(4, 0, 0, 0, 5, 8, NTK_OK, 2, 2, 3);
  /* fewer samples than the chosen shape's rows: another shape */
  layout(4, 0, 0, 0, 1, 8, NTK_OK, 1, 4, 1);
  layout(6, 0, 0, 0, 2, 100, NTK_OK, 2, 3, 1);
  /* a block size given with no grid: kept, the shape chosen around it */
  layout(2, 0, 0, 8, 24, 32, NTK_OK, 2, 1, 8);
  layout(4, 0, 0, 16, 16, 64, NTK_OK, 1, 4, 16);
  /* a grid given with no block size: the block is chosen */
  layout(4, 4, 1, 0, 10, 8, NTK_OK, 4, 1, 3);
  layout(4, 0, 2, 0, 24, 32, NTK_OK, 2, 2, 12);
  /* refusals: what the user fixed cannot give every process a block */
  layout(2, 2, 1, 64, 24, 32, NTK_ERR_INPUT, 0, 0, 0);
  layout(4, 4, 1, 0, 3, 8, NTK_ERR_INPUT, 0, 0, 0);
  layout(4, 0, 0, 64, 24, 32, NTK_ERR_INPUT, 0, 0, 0);
  layout(4, 0, 0, 0, 1, 1, NTK_ERR_INPUT, 0, 0, 0);
  layout(4, 3, 0, 0, 100, 100, NTK_ERR_INPUT, 0, 0, 0);
  layout(2, 0, 0, -1, 100, 100, NTK_ERR_INPUT, 0, 0, 0);
  /* widths near 2^31: block counts stay positive (64-bit), the layout is the usual one */
  layout(4, 0, 0, 0, 4096, 2147483647, NTK_OK, 2, 2, 64);
  layout(4, 0, 0, 2147483647, 4096, 2147483647, NTK_ERR_INPUT, 0, 0, 0);
  /* the message of a fixed layout names the dimension without a block */
  int pr, pc, nb;
  ntk_err_clear();
  assert_int_equal(ntk_grid_layout(2, 2, 1, 64, 24, 32, &pr, &pc, &nb), NTK_ERR_INPUT);
  assert_non_null(strstr(ntk_err_message(), "24 samples in blocks of 64 give 1 row block(s) for 2 process rows"));
  ntk_err_clear();
  /* every layout chosen gives every process row and column a block, for many shapes */
  for (int size = 1; size <= 12; ++size)
    for (int64_t m = 1; m <= 40; m += 3)
      for (int64_t n = 1; n <= 40; n += 5) {
        ntk_err_clear();
        if (ntk_grid_layout(size, 0, 0, 0, m, n, &pr, &pc, &nb) != NTK_OK) {
          /* only when no shape has at most m rows and n columns */
          for (int r = 1; r <= size; ++r)
            if (size % r == 0) assert_true(m < r || n < size / r);
          continue;
        }
        assert_int_equal(pr * pc, size);
        assert_true(nb >= 1 && nb <= NTK_GRID_BLOCK_DEFAULT);
        assert_true((m + nb - 1) / nb >= pr && (n + nb - 1) / nb >= pc);
      }
  ntk_err_clear();
}

static void test_create(void **state) {
  (void)state;
  ntk_grid g;
  grid_for(3, &g);
  assert_int_equal(g.nprow, g_rows);
  assert_int_equal(g.npcol, g_cols);
  assert_int_equal(g.size, g_size);
  assert_int_equal(g.rank, g_rank);
  assert_int_equal(g.nb, 3);
  /* "Row" order, which ntk_dmat_gather relies on */
  assert_int_equal(g.myrow, g_rank / g_cols);
  assert_int_equal(g.mycol, g_rank % g_cols);
  int rs, rr, cs, cr;
  MPI_Comm_size(g.row_comm, &rs);
  MPI_Comm_rank(g.row_comm, &rr);
  MPI_Comm_size(g.col_comm, &cs);
  MPI_Comm_rank(g.col_comm, &cr);
  assert_int_equal(rs, g_cols);
  assert_int_equal(rr, g.mycol);
  assert_int_equal(cs, g_rows);
  assert_int_equal(cr, g.myrow);
  ntk_grid_free(&g);

  /* 0 = choose, for one or both dimensions */
  int pr, pc;
  ntk_grid_choose(g_size, &pr, &pc);
  assert_int_equal(ntk_grid_create(MPI_COMM_WORLD, 0, 0, 2, &g), NTK_OK);
  assert_int_equal(g.nprow, pr);
  assert_int_equal(g.npcol, pc);
  ntk_grid_free(&g);
  assert_int_equal(ntk_grid_create(MPI_COMM_WORLD, 0, g_cols, 2, &g), NTK_OK);
  assert_int_equal(g.nprow, g_rows);
  ntk_grid_free(&g);
  assert_int_equal(ntk_grid_create(MPI_COMM_WORLD, g_rows, 0, 2, &g), NTK_OK);
  assert_int_equal(g.npcol, g_cols);
  ntk_grid_free(&g);
}

static void expect_input_error(int rows, int cols, int nb) {
  ntk_grid g;
  int rc = ntk_grid_create(MPI_COMM_WORLD, rows, cols, nb, &g);
  EXPECT(rc == NTK_ERR_INPUT, "grid %d x %d (nb %d) on %d ranks: code %d, expected input error",
         rows, cols, nb, g_size, rc);
  EXPECT(strstr(ntk_err_message(), "grid") != NULL, "message '%s' does not name the grid",
         ntk_err_message());
  ntk_err_clear();
  ntk_grid_free(&g); /* must be harmless after a failed create */
}

static void test_create_errors(void **state) {
  (void)state;
  expect_input_error(g_size + 1, 1, 2);
  expect_input_error(1, g_size + 1, 2);
  expect_input_error(g_size, 2, 2);
  expect_input_error(g_size + 1, 0, 2);
  expect_input_error(0, g_size + 1, 2);
  expect_input_error(-1, -g_size, 2); /* the product matches, the shape does not exist */
  expect_input_error(-1, 0, 2);
  expect_input_error(g_rows, g_cols, 0);
  assert_no_failures();
  /* a good grid still works after the failures */
  ntk_grid g;
  grid_for(2, &g);
  ntk_grid_free(&g);
}

/* l2g/g2l round trips; every global entry owned by exactly one rank. */
static void test_indices(void **state) {
  (void)state;
  static const int shapes[][2] = {{37, 23}, {1, 50}, {50, 1}, {5, 5}, {130, 70}};
  for (int b = 0; b < NBS; ++b) {
    ntk_grid g;
    grid_for(block_sizes[b], &g);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; ++s) {
      const int m = shapes[s][0], n = shapes[s][1];
      ntk_dmat A;
      create(&g, m, n, &A);
      EXPECT(A.lld >= 1 && A.lld >= A.mloc, "lld %d for mloc %d", A.lld, A.mloc);
      EXPECT(ntk_dmat_local_bytes(&g, m, n) == (size_t)A.mloc * A.nloc * sizeof(double),
             "local_bytes");
      int *own = calloc((size_t)m * n, sizeof(int)), *tot = calloc((size_t)m * n, sizeof(int));
      int prev = -1;
      for (int il = 0; il < A.mloc; ++il) {
        int i = ntk_dmat_row_l2g(&A, il), back = -1;
        EXPECT(i > prev && i < m, "row l2g(%d) = %d not increasing in [0, %d)", il, i, m);
        prev = i;
        EXPECT(ntk_dmat_row_g2l(&A, i, &back) && back == il, "row round trip %d -> %d -> %d",
               il, i, back);
      }
      prev = -1;
      for (int jl = 0; jl < A.nloc; ++jl) {
        int j = ntk_dmat_col_l2g(&A, jl), back = -1;
        EXPECT(j > prev && j < n, "col l2g(%d) = %d not increasing in [0, %d)", jl, j, n);
        prev = j;
        EXPECT(ntk_dmat_col_g2l(&A, j, &back) && back == jl, "col round trip %d -> %d -> %d",
               jl, j, back);
      }
      int rows_owned = 0, cols_owned = 0;
      for (int i = 0; i < m; ++i) {
        int il;
        if (ntk_dmat_row_g2l(&A, i, &il)) {
          ++rows_owned;
          EXPECT(il >= 0 && il < A.mloc && ntk_dmat_row_l2g(&A, il) == i, "row g2l(%d) = %d", i,
                 il);
        }
      }
      for (int j = 0; j < n; ++j) {
        int jl;
        if (ntk_dmat_col_g2l(&A, j, &jl)) {
          ++cols_owned;
          EXPECT(jl >= 0 && jl < A.nloc && ntk_dmat_col_l2g(&A, jl) == j, "col g2l(%d) = %d", j,
                 jl);
        }
      }
      EXPECT(rows_owned == A.mloc && cols_owned == A.nloc, "owned %d x %d, local %d x %d",
             rows_owned, cols_owned, A.mloc, A.nloc);
      for (int jl = 0; jl < A.nloc; ++jl)
        for (int il = 0; il < A.mloc; ++il)
          own[(size_t)ntk_dmat_row_l2g(&A, il) * n + ntk_dmat_col_l2g(&A, jl)] += 1;
      MPI_Allreduce(own, tot, m * n, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
      int bad = 0;
      for (int k = 0; k < m * n; ++k) bad += tot[k] != 1;
      EXPECT(bad == 0, "%d x %d nb %d: %d entries not owned exactly once", m, n, g.nb, bad);
      free(own);
      free(tot);
      ntk_dmat_free(&A);
    }
    ntk_grid_free(&g);
  }
  assert_no_failures();
}

static void test_fill_gather_copy(void **state) {
  (void)state;
  const int m = 37, n = 23;
  for (int b = 0; b < NBS; ++b) {
    ntk_grid g;
    grid_for(block_sizes[b], &g);
    ntk_dmat A, B;
    create(&g, m, n, &A);
    for (int jl = 0; jl < A.nloc; ++jl)
      for (int il = 0; il < A.mloc; ++il)
        EXPECT(local_at(&A, il, jl) == 0.0, "create is not zero-filled");
    ntk_dmat_fill(&A, tag, NULL);
    for (int jl = 0; jl < A.nloc; ++jl)
      for (int il = 0; il < A.mloc; ++il)
        EXPECT(local_at(&A, il, jl) == tag(ntk_dmat_row_l2g(&A, il), ntk_dmat_col_l2g(&A, jl), NULL),
               "fill");
    const int roots[2] = {0, g_size - 1};
    for (int r = 0; r < 2; ++r) {
      double *full = (double *)&full; /* must be overwritten, with NULL off the root */
      EXPECT(ntk_dmat_gather(&A, roots[r], &full) == NTK_OK, "gather");
      if (g_rank == roots[r]) {
        int bad = 0;
        for (int i = 0; i < m; ++i)
          for (int j = 0; j < n; ++j) bad += full[(size_t)i * n + j] != tag(i, j, NULL);
        EXPECT(bad == 0, "gather to %d nb %d: %d wrong entries", roots[r], g.nb, bad);
        free(full);
      } else {
        EXPECT(full == NULL, "gather leaves a non-NULL pointer off the root");
      }
    }
    EXPECT(ntk_dmat_copy(&A, &B) == NTK_OK, "copy");
    EXPECT(B.m == m && B.n == n && B.mloc == A.mloc && B.nloc == A.nloc && B.a != A.a, "copy shape");
    for (int jl = 0; jl < A.nloc; ++jl)
      for (int il = 0; il < A.mloc; ++il)
        EXPECT(local_at(&B, il, jl) == local_at(&A, il, jl), "copy entry");
    ntk_dmat_zero(&B);
    EXPECT(ntk_dmat_norm_fro(&B) == 0.0, "zero");
    EXPECT(ntk_dmat_norm_fro(&A) > 0.0, "zeroing the copy touched the original");
    ntk_dmat_free(&A);
    ntk_dmat_free(&B);
    ntk_grid_free(&g);
  }
  assert_no_failures();
}

static void test_replicate_rows(void **state) {
  (void)state;
  static const int shapes[][2] = {{37, 23}, {9, 130}, {5, 1}};
  for (int b = 0; b < NBS; ++b) {
    ntk_grid g;
    grid_for(block_sizes[b], &g);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; ++s) {
      const int m = shapes[s][0], n = shapes[s][1];
      ntk_dmat A;
      create(&g, m, n, &A);
      ntk_dmat_fill(&A, tag, NULL);
      double *rows = NULL;
      EXPECT(ntk_dmat_replicate_rows(&A, &rows) == NTK_OK, "replicate_rows");
      int bad = 0;
      for (int il = 0; il < A.mloc; ++il)
        for (int j = 0; j < n; ++j)
          bad += rows[(size_t)il * n + j] != tag(ntk_dmat_row_l2g(&A, il), j, NULL);
      EXPECT(bad == 0, "replicate_rows %d x %d nb %d: %d wrong", m, n, g.nb, bad);
      free(rows);
      ntk_dmat_free(&A);
    }
    /* rows beyond MPI's int counts are refused on every rank before anything is allocated
     * (the shape alone decides: 2^17 x 3 2^16 is at least 3 2^31 entries per rank on up to
     * 4 grid rows; no array behind it) */
    ntk_dmat huge = {.g = &g, .m = 1 << 17, .n = 3 << 16};
    double *rows = (double *)&huge;
    EXPECT(ntk_dmat_replicate_rows(&huge, &rows) == NTK_ERR_INPUT && rows == NULL,
           "replicate_rows of a %d x %d matrix on %d grid rows accepted", huge.m, huge.n, g.nprow);
    EXPECT(strstr(ntk_err_message(), "2^31") != NULL, "replicate_rows refusal: %s", ntk_err_message());
    ntk_err_clear();
    ntk_grid_free(&g);
  }
  assert_no_failures();
}

static void test_allgather_vector(void **state) {
  (void)state;
  const int len = 41;
  for (int b = 0; b < NBS; ++b) {
    ntk_grid g;
    grid_for(block_sizes[b], &g);
    for (int orient = 0; orient < 2; ++orient) {
      ntk_dmat v;
      create(&g, orient ? len : 1, orient ? 1 : len, &v);
      ntk_dmat_fill(&v, tag, NULL);
      double x[41];
      memset(x, 0xff, sizeof x);
      EXPECT(ntk_dmat_allgather_vector(&v, x) == NTK_OK, "allgather_vector");
      for (int k = 0; k < len; ++k)
        EXPECT(x[k] == (orient ? tag(k, 0, NULL) : tag(0, k, NULL)), "vector %s entry %d = %g",
               orient ? "column" : "row", k, x[k]);
      ntk_dmat_free(&v);
    }
    ntk_dmat M;
    create(&g, 3, 4, &M);
    double x[12];
    EXPECT(ntk_dmat_allgather_vector(&M, x) == NTK_ERR_INTERNAL, "3 x 4 is not a vector");
    ntk_err_clear();
    ntk_dmat_free(&M);
    ntk_grid_free(&g);
  }
  assert_no_failures();
}

/* ntk_gather_blocks against what MPI_Allgatherv would leave (every block at its place on
 * every rank, the gaps between blocks untouched), bitwise, for the patterns of
 * contributors the gathered products meet: all ranks, one (each in turn; a block longer
 * than the rank count and one shorter, some of whose pieces are empty), every other rank
 * (half: MPI_Allgatherv itself from 4 ranks on), none. */
static double block_entry(int r, int i) { return 1000.0 * r + i + 0.125; }

static void test_gather_blocks(void **state) {
  (void)state;
  const int q = g_size, me = g_rank;
  int cnt[4], dsp[4], scratch[8], total = 0;
  double send[64], recv[300], want[300];
  for (int pattern = 0; pattern < 3 + 2 * q; ++pattern) {
    total = 0;
    for (int r = 0; r < q; ++r) {
      cnt[r] = pattern == 0   ? 5 + 7 * r                        /* all */
               : pattern == 1 ? 0                                /* none */
               : pattern == 2 ? (r % 2 == 0 ? 41 : 0)            /* every other */
               : pattern < 3 + q ? (r == pattern - 3 ? 37 : 0)   /* one, longer than q */
                                 : (r == pattern - 3 - q ? 3 : 0); /* one, shorter than q */
      dsp[r] = total + 2; /* a gap of 2 before each block */
      total = dsp[r] + cnt[r];
    }
    for (int i = 0; i < cnt[me]; ++i) send[i] = block_entry(me, i);
    for (int i = 0; i < total; ++i) recv[i] = want[i] = -1.0;
    for (int r = 0; r < q; ++r)
      for (int i = 0; i < cnt[r]; ++i) want[dsp[r] + i] = block_entry(r, i);
    EXPECT(ntk_gather_blocks(send, recv, cnt, dsp, MPI_COMM_WORLD, scratch) == NTK_OK,
           "gather_blocks pattern %d", pattern);
    EXPECT(memcmp(recv, want, sizeof(double) * (size_t)total) == 0,
           "gather_blocks pattern %d on %d ranks: not what MPI_Allgatherv leaves", pattern, q);
  }
  assert_no_failures();
}

static double lower_or_garbage(int i, int j, void *ctx) {
  return i >= j ? tag(i, j, ctx) : -1e9 - hash_uniform((uint64_t)i, (uint64_t)j, 9);
}

static void test_symmetrize_lower(void **state) {
  (void)state;
  const int n = 29;
  for (int b = 0; b < NBS; ++b) {
    ntk_grid g;
    grid_for(block_sizes[b], &g);
    ntk_dmat A;
    create(&g, n, n, &A);
    ntk_dmat_fill(&A, lower_or_garbage, NULL);
    EXPECT(ntk_dmat_symmetrize_lower(&A) == NTK_OK, "symmetrize");
    /* every rank checks its entries: lower kept, upper = mirrored lower, bitwise */
    int bad = 0;
    for (int jl = 0; jl < A.nloc; ++jl)
      for (int il = 0; il < A.mloc; ++il) {
        int i = ntk_dmat_row_l2g(&A, il), j = ntk_dmat_col_l2g(&A, jl);
        bad += local_at(&A, il, jl) != (i >= j ? tag(i, j, NULL) : tag(j, i, NULL));
      }
    EXPECT(bad == 0, "symmetrize nb %d: %d wrong entries", g.nb, bad);
    double *full = NULL;
    EXPECT(ntk_dmat_gather(&A, 0, &full) == NTK_OK, "gather");
    if (g_rank == 0) {
      int asym = 0;
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) asym += full[(size_t)i * n + j] != full[(size_t)j * n + i];
      EXPECT(asym == 0, "gathered matrix not exactly symmetric (%d entries)", asym);
    }
    free(full);
    ntk_dmat_free(&A);
    create(&g, n, n + 1, &A);
    EXPECT(ntk_dmat_symmetrize_lower(&A) == NTK_ERR_INTERNAL, "symmetrize non-square");
    ntk_err_clear();
    ntk_dmat_free(&A);
    ntk_grid_free(&g);
  }
  assert_no_failures();
}

/* op(X)(i, k) for X filled by rnd with `seed`, op = N or T. */
static double op_entry(char t, int i, int k, uint64_t seed) {
  return t == 'N' ? hash_uniform((uint64_t)i, (uint64_t)k, seed)
                  : hash_uniform((uint64_t)k, (uint64_t)i, seed);
}

static void test_gemm(void **state) {
  (void)state;
  /* C taller than wide, then wider than tall (the gathered A B^T's two paths) */
  for (int shape = 0; shape < 2; ++shape) {
  const int M = shape ? 17 : 23, N = shape ? 23 : 17, K = 31;
  const double alpha = 0.7, beta = -1.3;
  const char ops[2] = {'N', 'T'};
  uint64_t sa = 11, sb = 12, sc = 13;
  for (int b = 0; b < NBS; ++b) {
    ntk_grid g;
    grid_for(block_sizes[b], &g);
    for (int x = 0; x < 2; ++x)
      for (int y = 0; y < 2; ++y) {
        char ta = ops[x], tb = ops[y];
        ntk_dmat A, B, C;
        create(&g, ta == 'N' ? M : K, ta == 'N' ? K : M, &A);
        create(&g, tb == 'N' ? K : N, tb == 'N' ? N : K, &B);
        create(&g, M, N, &C);
        ntk_dmat_fill(&A, rnd, &sa);
        ntk_dmat_fill(&B, rnd, &sb);
        ntk_dmat_fill(&C, rnd, &sc);
        /* PDGEMM; for A B^T and A B also the gathered products in one panel, in panels of
         * one block (panel_mb tiny) and in panels of a few blocks (0.004 MiB: k0 > 0 with
         * several blocks of one grid column in a panel) */
        const int gathered = ta == 'N';
        for (int way = 0; way < (gathered ? 4 : 1); ++way) {
          const double mb = way == 1 ? 64.0 : way == 2 ? 1e-6 : 0.004;
          ntk_dmat_fill(&C, rnd, &sc);
          if (way == 0)
            EXPECT(ntk_dmat_gemm(ta, tb, alpha, &A, &B, beta, &C) == NTK_OK, "gemm %c%c", ta, tb);
          else if (tb == 'T')
            EXPECT(ntk_dmat_gemm_abt_gathered(alpha, &A, &B, beta, &C, mb) == NTK_OK,
                   "gathered A B^T");
          else
            EXPECT(ntk_dmat_gemm_ab_gathered(alpha, &A, &B, beta, &C, mb) == NTK_OK,
                   "gathered A B");
          double worst = 0.0;
          for (int jl = 0; jl < C.nloc; ++jl)
            for (int il = 0; il < C.mloc; ++il) {
              int i = ntk_dmat_row_l2g(&C, il), j = ntk_dmat_col_l2g(&C, jl);
              double s = 0.0, sabs = 0.0;
              for (int k = 0; k < K; ++k) {
                double p = op_entry(ta, i, k, sa) * op_entry(tb, k, j, sb);
                s += p;
                sabs += fabs(p);
              }
              double c0 = hash_uniform((uint64_t)i, (uint64_t)j, sc);
              double ref = alpha * s + beta * c0;
              double scale = fabs(alpha) * sabs + fabs(beta * c0);
              double e = fabs(local_at(&C, il, jl) - ref) / scale;
              if (e > worst) worst = e;
            }
          EXPECT(worst < REL, "gemm %c%c way %d nb %d: relative error %.3g", ta, tb, way, g.nb, worst);
        }
        ntk_dmat_free(&A);
        ntk_dmat_free(&B);
        ntk_dmat_free(&C);
      }
    /* inner dimensions that do not match */
    ntk_dmat A, B, C;
    create(&g, M, K, &A);
    create(&g, K + 1, N, &B);
    create(&g, M, N, &C);
    EXPECT(ntk_dmat_gemm('N', 'N', 1.0, &A, &B, 0.0, &C) == NTK_ERR_INTERNAL, "gemm mismatch");
    ntk_err_clear();
    /* inner dimensions right, C of the wrong shape */
    EXPECT(ntk_dmat_gemm('N', 'T', 1.0, &A, &A, 0.0, &C) == NTK_ERR_INTERNAL, "gemm C shape");
    ntk_err_clear();
    EXPECT(ntk_dmat_gemm_abt_gathered(1.0, &A, &A, 0.0, &C, 64.0) == NTK_ERR_INTERNAL,
           "gathered A B^T C shape");
    ntk_err_clear();
    EXPECT(ntk_dmat_gemm_ab_gathered(1.0, &A, &B, 0.0, &C, 64.0) == NTK_ERR_INTERNAL,
           "gathered A B inner dimensions");
    ntk_err_clear();
    ntk_dmat_free(&A);
    ntk_dmat_free(&B);
    ntk_dmat_free(&C);
    ntk_grid_free(&g);
  }
  }
  assert_no_failures();
}

static void test_syrk_lower(void **state) {
  (void)state;
  const int n = 29, k = 13;
  const double alpha = 0.8, beta = 0.3;
  uint64_t sa = 21, sc = 22;
  for (int b = 0; b < NBS; ++b) {
    ntk_grid g;
    grid_for(block_sizes[b], &g);
    ntk_dmat A, C;
    create(&g, n, k, &A);
    create(&g, n, n, &C);
    ntk_dmat_fill(&A, rnd, &sa);
    ntk_dmat_fill(&C, rnd, &sc);
    /* PDSYRK, and the gathered Gram in one panel and in panels of one block column per
     * grid column (panel_mb tiny) */
    for (int way = 0; way < 3; ++way) {
    ntk_dmat_fill(&C, rnd, &sc);
    if (way == 0)
      EXPECT(ntk_dmat_syrk_lower(alpha, &A, beta, &C) == NTK_OK, "syrk");
    else
      EXPECT(ntk_dmat_gram_lower(alpha, &A, beta, &C, way == 1 ? 64.0 : 1e-6) == NTK_OK, "gram");
    double worst = 0.0;
    int upper_changed = 0;
    for (int jl = 0; jl < C.nloc; ++jl)
      for (int il = 0; il < C.mloc; ++il) {
        int i = ntk_dmat_row_l2g(&C, il), j = ntk_dmat_col_l2g(&C, jl);
        double c0 = hash_uniform((uint64_t)i, (uint64_t)j, sc);
        double s = 0.0, sabs = 0.0;
        for (int q = 0; q < k; ++q) {
          double p = hash_uniform((uint64_t)i, (uint64_t)q, sa) *
                     hash_uniform((uint64_t)j, (uint64_t)q, sa);
          s += p;
          sabs += fabs(p);
        }
        double e = fabs(local_at(&C, il, jl) - (alpha * s + beta * c0)) /
                   (fabs(alpha) * sabs + fabs(beta * c0));
        if (i < j) {
          /* PDSYRK leaves the upper triangle alone; the gathered Gram computes whole
           * diagonal blocks, so there an entry is either untouched or the right value */
          upper_changed += local_at(&C, il, jl) != c0 && (way == 0 || e >= REL);
          continue;
        }
        if (e > worst) worst = e;
      }
    EXPECT(worst < REL, "syrk way %d nb %d: relative error %.3g", way, g.nb, worst);
    EXPECT(upper_changed == 0, "syrk way %d nb %d changed %d entries above the diagonal", way,
           g.nb, upper_changed);
    }
    ntk_dmat bad;
    create(&g, n + 1, n + 1, &bad);
    EXPECT(ntk_dmat_syrk_lower(1.0, &A, 0.0, &bad) == NTK_ERR_INTERNAL, "syrk shape check");
    ntk_err_clear();
    ntk_dmat_free(&bad);
    ntk_dmat_free(&A);
    ntk_dmat_free(&C);
    ntk_grid_free(&g);
  }
  assert_no_failures();
}

static void test_norms_trace(void **state) {
  (void)state;
  const int m = 31, n = 31;
  uint64_t sa = 31, sb = 32;
  double nrm = 0.0, dif = 0.0, tr = 0.0, trabs = 0.0, rect = 0.0;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double a = hash_uniform((uint64_t)i, (uint64_t)j, sa);
      double d = a - hash_uniform((uint64_t)i, (uint64_t)j, sb);
      nrm += a * a;
      dif += d * d;
      if (i == j) {
        tr += a;
        trabs += fabs(a);
      }
    }
  for (int i = 0; i < 7; ++i)
    for (int j = 0; j < 45; ++j) rect += tag(i, j, NULL) * tag(i, j, NULL);
  nrm = sqrt(nrm);
  dif = sqrt(dif);
  rect = sqrt(rect);
  for (int b = 0; b < NBS; ++b) {
    ntk_grid g;
    grid_for(block_sizes[b], &g);
    ntk_dmat A, B, R;
    create(&g, m, n, &A);
    create(&g, m, n, &B);
    create(&g, 7, 45, &R);
    ntk_dmat_fill(&A, rnd, &sa);
    ntk_dmat_fill(&B, rnd, &sb);
    ntk_dmat_fill(&R, tag, NULL);
    double x = ntk_dmat_norm_fro(&A), y = ntk_dmat_diff_fro(&A, &B), t = ntk_dmat_trace(&A);
    double z = ntk_dmat_norm_fro(&R);
    EXPECT(fabs(x - nrm) <= REL * nrm, "norm_fro nb %d: %.17g vs %.17g", g.nb, x, nrm);
    EXPECT(fabs(y - dif) <= REL * dif, "diff_fro nb %d: %.17g vs %.17g", g.nb, y, dif);
    EXPECT(fabs(t - tr) <= REL * trabs, "trace nb %d: %.17g vs %.17g", g.nb, t, tr);
    EXPECT(fabs(z - rect) <= REL * rect, "norm_fro 7 x 45 nb %d: %.17g vs %.17g", g.nb, z, rect);
    EXPECT(ntk_dmat_diff_fro(&A, &A) == 0.0, "diff_fro(A, A) != 0");
    ntk_dmat_free(&A);
    ntk_dmat_free(&B);
    ntk_dmat_free(&R);
    ntk_grid_free(&g);
  }
  assert_no_failures();
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_choose),
      cmocka_unit_test(test_layout),
      cmocka_unit_test(test_create),
      cmocka_unit_test(test_create_errors),
      cmocka_unit_test(test_indices),
      cmocka_unit_test(test_fill_gather_copy),
      cmocka_unit_test(test_replicate_rows),
      cmocka_unit_test(test_allgather_vector),
      cmocka_unit_test(test_gather_blocks),
      cmocka_unit_test(test_symmetrize_lower),
      cmocka_unit_test(test_gemm),
      cmocka_unit_test(test_syrk_lower),
      cmocka_unit_test(test_norms_trace),
  };
  return ntk_test_run(argc, argv, "grid", tests, sizeof tests / sizeof tests[0]);
}
