/* ntk_eigs: SLEPc's EPS on a PETSc shell matrix whose product is the caller's callback.
 *
 * Vectors: the PETSc Vec of a rank is exactly its local part of the N x 1 block-cyclic
 * dmat (the ranks of grid column 0 hold mloc rows, the others none), so converting is one
 * memcpy each way and no entry moves between ranks.  PETSc's global numbering is then a
 * permutation of the samples, which leaves the spectrum alone; the start vector is drawn
 * by sample index and the eigenvectors go back through the same map, so neither sees it.
 * Ranks outside grid column 0 hold empty vectors.  SLEPc 3.18's subspace iteration fails
 * there (BVNormalize calls LAPACK's lascl with LDA 0), which is why the table has no
 * "subspace" row; the rows it has are tested on grids with empty ranks (test_eigs 1 x 2).
 *
 * PETSc errors become NTK_ERR_RUNTIME with PETSc's message and the failing call, and pass
 * through ntk_err_trace with this file's line, as NTK_CHECK does. */
#include "ntk_eigs.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <slepceps.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_error.h"
#include "ntk_rng.h"
#include "ntk_size.h"

/* ------------------------------------------------------------------- the table -- */

const ntk_eigs_method ntk_eigs_methods[] = {
    {"krylovschur", EPSKRYLOVSCHUR,
     "Krylov-Schur with thick restart (default; for a symmetric operator Lanczos with full "
     "reorthogonalisation and restarts)"},
    {"lanczos", EPSLANCZOS, "explicitly restarted Lanczos, full reorthogonalisation"},
    {"arnoldi", EPSARNOLDI, "explicitly restarted Arnoldi (ignores the symmetry; reference)"},
};
const int ntk_eigs_num_methods = (int)(sizeof ntk_eigs_methods / sizeof ntk_eigs_methods[0]);

const ntk_eigs_method *ntk_eigs_find(const char *name) {
  if (!name) return NULL;
  for (int i = 0; i < ntk_eigs_num_methods; ++i)
    if (strcmp(ntk_eigs_methods[i].name, name) == 0) return &ntk_eigs_methods[i];
  return NULL;
}

/* ------------------------------------------------------------ PETSc life cycle -- */

static int started = 0;
static MPI_Comm petsc_world = MPI_COMM_NULL;

/* PETSc's own words for its first error (PETSC_ERROR_INITIAL), kept by the error
 * handler below: the error code alone says little ("Error in external library"). */
static char petsc_what[320];

static PetscErrorCode keep_error(MPI_Comm comm, int line, const char *fun, const char *file,
                                 PetscErrorCode n, PetscErrorType p, const char *mess,
                                 void *ctx) {
  (void)comm;
  (void)ctx;
  if (p == PETSC_ERROR_INITIAL)
    snprintf(petsc_what, sizeof petsc_what, "%s (%s, %s:%d)", mess && *mess ? mess : "-",
             fun ? fun : "?", file ? file : "?", line);
  return n;
}

static int petsc_fail(PetscErrorCode pe, const char *call, int line, const char *func) {
  const char *text = NULL;
  PetscErrorMessage(pe, &text, NULL);
  ntk_err_set(NTK_ERR_RUNTIME, "SLEPc/PETSc: %s failed: %s: %s", call,
              text ? text : "unknown error", petsc_what[0] ? petsc_what : "-");
  petsc_what[0] = '\0';
  ntk_err_trace(__FILE__, line, func);
  return NTK_ERR_RUNTIME;
}

/* Inside functions with an `err` and a `done:` label. */
#define EIGS_TRY(call)                                                  \
  do {                                                                  \
    PetscErrorCode eigs_pe_ = (call);                                   \
    if (eigs_pe_) {                                                     \
      err = petsc_fail(eigs_pe_, #call, __LINE__, __func__);            \
      goto done;                                                        \
    }                                                                   \
  } while (0)

/* PETSc is told not to touch signals (-no_signal_handler), but what it does at start and
 * end is its own business: every handler ntkspec may have installed is put back. */
#define EIGS_NSIG 32
static void signals_save(struct sigaction *sa) {
  for (int s = 1; s < EIGS_NSIG; ++s)
    if (s != SIGKILL && s != SIGSTOP) sigaction(s, NULL, &sa[s]);
}
static void signals_restore(const struct sigaction *sa) {
  for (int s = 1; s < EIGS_NSIG; ++s)
    if (s != SIGKILL && s != SIGSTOP) sigaction(s, &sa[s], NULL);
}

/* Collective over comm, once: PETSc's world is a duplicate of comm (PETSc sets its MPI error
 * handler there, not on the caller's communicator), the options are this fixed list and
 * PETSC_OPTIONS (the user's explicit request) but no petscrc file and not the program's
 * argv, and errors are returned silently (the message travels in the NTK error). */
static int eigs_start(MPI_Comm comm) {
  if (started) return NTK_OK;
  static char prog[] = "ntkspec", o1[] = "-skip_petscrc", o2[] = "-no_signal_handler",
              o3[] = "-options_left", o4[] = "no";
  static char *args[] = {prog, o1, o2, o3, o4, NULL};
  int argc = 5;
  char **argv = args;
  struct sigaction saved[EIGS_NSIG];
  MPI_Comm_dup(comm, &petsc_world);
  PETSC_COMM_WORLD = petsc_world;
  signals_save(saved);
  PetscErrorCode pe = SlepcInitialize(&argc, &argv, NULL, NULL);
  signals_restore(saved);
  int err = NTK_OK;
  if (pe) {
    err = ntk_err_set(NTK_ERR_RUNTIME, "SLEPc/PETSc: SlepcInitialize failed (error %d)", (int)pe);
  } else {
    started = 1;
    pe = PetscPushErrorHandler(keep_error, NULL);
    if (pe) err = petsc_fail(pe, "PetscPushErrorHandler", __LINE__, __func__);
  }
  return ntk_err_sync(comm, err);
}

int ntk_eigs_finalize(void) {
  if (!started) return NTK_OK;
  struct sigaction saved[EIGS_NSIG];
  signals_save(saved);
  PetscErrorCode pe = SlepcFinalize();
  signals_restore(saved);
  started = 0;
  if (petsc_world != MPI_COMM_NULL) MPI_Comm_free(&petsc_world);
  if (pe) return ntk_err_set(NTK_ERR_RUNTIME, "SLEPc/PETSc: SlepcFinalize failed (error %d)", (int)pe);
  return NTK_OK;
}

/* ------------------------------------------------------------- the operator -- */

typedef struct {
  const ntk_grid *g;
  ntk_eigs_apply_fn apply;
  void *ctx;
  ntk_dmat x, y; /* N x 1 staging: the Vec's entries are x.a[0 .. nlocal-1] */
  int nlocal;    /* this rank's Vec length: mloc in grid column 0, else 0 */
  long long products;
  int err; /* the NTK error of a failed product, agreed across ranks */
} shell_ctx;

/* One product through the callback, agreed across ranks. */
static int shell_apply(shell_ctx *s) {
  int err = s->apply(s->ctx, &s->x, &s->y);
  ++s->products;
  return ntk_err_sync(s->g->comm, err);
}

static PetscErrorCode shell_mult(Mat A, Vec x, Vec y) {
  shell_ctx *s = NULL;
  const PetscScalar *xa;
  PetscScalar *ya;
  PetscCall(MatShellGetContext(A, &s));
  PetscCheck(!s->err, PETSC_COMM_SELF, PETSC_ERR_LIB, "an earlier product failed");
  PetscCall(VecGetArrayRead(x, &xa));
  if (s->nlocal) memcpy(s->x.a, xa, (size_t)s->nlocal * sizeof(double));
  PetscCall(VecRestoreArrayRead(x, &xa));
  s->err = shell_apply(s);
  /* every rank knows the outcome, so all of them leave SLEPc together */
  PetscCheck(!s->err, PETSC_COMM_SELF, PETSC_ERR_LIB, "the operator failed");
  PetscCall(VecGetArray(y, &ya));
  if (s->nlocal) memcpy(ya, s->y.a, (size_t)s->nlocal * sizeof(double));
  PetscCall(VecRestoreArray(y, &ya));
  return 0;
}

/* ------------------------------------------------------------------ sizes -- */

int ntk_eigs_ncv(int N, int K, int ncv) {
  /* SLEPc's Krylov-Schur default (EPSSetDimensions_Default) */
  int c = ncv > 0 ? ncv : (2 * K > K + 15 ? 2 * K : K + 15);
  return c < N ? c : N;
}

int64_t ntk_eigs_memory(const ntk_grid *g, int N, int K, int ncv, int want_vectors) {
  const int c = ntk_eigs_ncv(N, K, ncv);
  const int64_t vec = ntk_dmat_max_local_bytes(g, N, 1);
  /* ncv + 1 basis columns, about six work vectors (SLEPc's and the staging x, y, start),
   * the projected problem's few ncv x ncv matrices; with vectors their mloc x K staging */
  int64_t b = ntk_size_mul((int64_t)c + 7, vec);
  b = ntk_size_add(b, ntk_size_mul(6 * (int64_t)c, (int64_t)c * (int64_t)sizeof(double)));
  if (want_vectors) b = ntk_size_add(b, ntk_size_mul(K, vec));
  return b;
}

/* ------------------------------------------------------------------ solve -- */

/* residual_i = ||A u_i - lambda_i u_i|| / ||u_i||, u_i in s->x; one product. */
static int pair_residual(shell_ctx *s, double lambda, double *res) {
  NTK_CHECK(shell_apply(s));
  double part[2] = {0.0, 0.0}, tot[2];
  for (int i = 0; i < s->nlocal; ++i) {
    const double u = s->x.a[i], r = s->y.a[i] - lambda * u;
    part[0] += r * r;
    part[1] += u * u;
  }
  MPI_Allreduce(part, tot, 2, MPI_DOUBLE, MPI_SUM, s->g->comm);
  *res = sqrt(tot[0]) / (tot[1] > 0.0 ? sqrt(tot[1]) : 1.0);
  return NTK_OK;
}

/* Z (N x K): every rank of a grid row receives grid column 0's mloc x K staging and keeps
 * its own columns. */
static int vectors_out(const ntk_grid *g, int N, int K, double *stage, int mloc, ntk_dmat *Z) {
  int err = ntk_err_sync(g->comm, ntk_dmat_create(g, N, K, Z));
  if (err) return err;
  if ((int64_t)mloc * K > INT32_MAX) {
    ntk_dmat_free(Z);
    return ntk_err_set(NTK_ERR_MEMORY, "eigenvectors: %lld local entries exceed the MPI count "
                       "limit; use more ranks", (long long)mloc * K);
  }
  MPI_Bcast(stage, mloc * K, MPI_DOUBLE, 0, g->row_comm);
  for (int jl = 0; jl < Z->nloc; ++jl)
    memcpy(Z->a + (size_t)jl * Z->lld, stage + (size_t)ntk_dmat_col_l2g(Z, jl) * mloc,
           (size_t)mloc * sizeof(double));
  return NTK_OK;
}

int ntk_eigs_solve(const ntk_grid *g, int N, ntk_eigs_apply_fn apply, void *ctx,
                   const ntk_eigs_options *opt, int K, int want_vectors, double *w_desc,
                   double *residual, ntk_dmat *Z, ntk_eigs_stats *stats) {
  const ntk_eigs_method *m = ntk_eigs_find(opt->method);
  if (!m) return ntk_err_set(NTK_ERR_INPUT, "unknown matrix-free eigensolver '%s'", opt->method);
  if (K < 1 || K > N)
    return ntk_err_set(NTK_ERR_INPUT, "top_k = %d: the matrix-free eigensolver needs 1 .. N = %d",
                       K, N);
  if (want_vectors && !Z)
    return ntk_err_set(NTK_ERR_INTERNAL, "eigenvectors requested without a matrix for them");
  NTK_CHECK(eigs_start(g->comm));

  shell_ctx s = {.g = g, .apply = apply, .ctx = ctx};
  Mat A = NULL;
  EPS eps = NULL;
  Vec v0 = NULL, u = NULL;
  double *stage = NULL, *res = NULL;
  int err = ntk_dmat_create(g, N, 1, &s.x);
  if (!err) err = ntk_dmat_create(g, N, 1, &s.y);
  if (!err) {
    res = ntk_calloc((size_t)K, sizeof(double), "eigenpair residuals");
    if (!res) err = NTK_ERR_MEMORY;
  }
  s.nlocal = g->mycol == 0 ? s.x.mloc : 0;
  if (!err && want_vectors) {
    stage = ntk_calloc((size_t)(s.x.mloc > 0 ? s.x.mloc : 1) * (size_t)K, sizeof(double),
                       "eigenvector staging");
    if (!stage) err = NTK_ERR_MEMORY;
  }
  if ((err = ntk_err_sync(g->comm, err))) goto done;

  EIGS_TRY(MatCreateShell(g->comm, s.nlocal, s.nlocal, N, N, &s, &A));
  EIGS_TRY(MatShellSetOperation(A, MATOP_MULT, (void (*)(void))shell_mult));
  EIGS_TRY(MatSetOption(A, MAT_SYMMETRIC, PETSC_TRUE));
  EIGS_TRY(MatCreateVecs(A, &v0, &u));
  {
    PetscScalar *va;
    EIGS_TRY(VecGetArray(v0, &va));
    for (int i = 0; i < s.nlocal; ++i)
      va[i] = ntk_rng_normal(0, NTK_STREAM_EIGS_START, (uint64_t)ntk_dmat_row_l2g(&s.x, i), 0, 0);
    EIGS_TRY(VecRestoreArray(v0, &va));
  }

  EIGS_TRY(EPSCreate(g->comm, &eps));
  EIGS_TRY(EPSSetOperators(eps, A, NULL));
  EIGS_TRY(EPSSetProblemType(eps, EPS_HEP));
  EIGS_TRY(EPSSetType(eps, m->eps));
  if (strcmp(m->eps, EPSLANCZOS) == 0)
    EIGS_TRY(EPSLanczosSetReorthog(eps, EPS_LANCZOS_REORTHOG_FULL));
  EIGS_TRY(EPSSetWhichEigenpairs(eps, EPS_LARGEST_REAL));
  EIGS_TRY(EPSSetDimensions(eps, K, opt->ncv > 0 ? ntk_eigs_ncv(N, K, opt->ncv) : PETSC_DEFAULT,
                            PETSC_DEFAULT));
  EIGS_TRY(EPSSetTolerances(eps, opt->tol, opt->max_it > 0 ? opt->max_it : PETSC_DEFAULT));
  EIGS_TRY(EPSSetConvergenceTest(eps, EPS_CONV_REL));
  EIGS_TRY(EPSSetInitialSpace(eps, 1, &v0));
  {
    PetscErrorCode pe = EPSSolve(eps);
    if (s.err) { /* the callback's own error says more than PETSc's */
      err = s.err;
      ntk_err_trace(__FILE__, __LINE__, __func__);
      goto done;
    }
    if (pe) {
      err = petsc_fail(pe, "EPSSolve", __LINE__, __func__);
      goto done;
    }
  }
  PetscInt nconv = 0, its = 0, nev = 0, ncv = 0, mpd = 0;
  EIGS_TRY(EPSGetConverged(eps, &nconv));
  EIGS_TRY(EPSGetIterationNumber(eps, &its));
  EIGS_TRY(EPSGetDimensions(eps, &nev, &ncv, &mpd));
  const long long solve_products = s.products;
  if (nconv < K) {
    err = ntk_err_set(NTK_ERR_RUNTIME,
                      "matrix-free eigensolver (%s): %d of %d eigenpairs converged to %g in %d "
                      "iterations (%lld products); raise eigensolver.max_it or "
                      "eigensolver.ncv, or loosen eigensolver.tol",
                      m->name, (int)nconv, K, opt->tol, (int)its, solve_products);
    goto done;
  }
  double maxrel = 0.0;
  for (int i = 0; i < K; ++i) {
    PetscScalar kr;
    const PetscScalar *ua;
    EIGS_TRY(EPSGetEigenpair(eps, i, &kr, NULL, u, NULL));
    EIGS_TRY(VecGetArrayRead(u, &ua));
    if (s.nlocal) memcpy(s.x.a, ua, (size_t)s.nlocal * sizeof(double));
    if (stage && s.nlocal) memcpy(stage + (size_t)i * s.x.mloc, ua, (size_t)s.nlocal * sizeof(double));
    EIGS_TRY(VecRestoreArrayRead(u, &ua));
    w_desc[i] = kr;
    if ((err = pair_residual(&s, kr, &res[i]))) goto done;
  }
  /* SLEPc solves the projected problem on every rank: make the results bitwise identical */
  MPI_Bcast(w_desc, K, MPI_DOUBLE, 0, g->comm);
  MPI_Bcast(res, K, MPI_DOUBLE, 0, g->comm);
  for (int i = 0; i < K; ++i) {
    const double rel = res[i] / (w_desc[i] != 0.0 ? fabs(w_desc[i]) : 1.0);
    if (rel > maxrel) maxrel = rel;
  }
  if (residual) memcpy(residual, res, (size_t)K * sizeof(double));
  if (want_vectors && (err = vectors_out(g, N, K, stage, s.x.mloc, Z))) goto done;
  if (stats) {
    stats->iterations = (int)its;
    stats->products = solve_products;
    stats->ncv = (int)ncv;
    stats->max_rel_residual = maxrel;
  }
done:
  if (eps) EPSDestroy(&eps);
  if (A) MatDestroy(&A);
  if (v0) VecDestroy(&v0);
  if (u) VecDestroy(&u);
  ntk_dmat_free(&s.x);
  ntk_dmat_free(&s.y);
  free(stage);
  free(res);
  /* PETSc's failures are collective (the same call fails everywhere) or come from the
   * callback, already agreed; agreeing again is cheap and covers the rest */
  return ntk_err_sync(g->comm, err);
}
