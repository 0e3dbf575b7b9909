#include "ntk_train.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_checkpoint.h"
#include "ntk_eig.h"
#include "ntk_eigs.h"
#include "ntk_error.h"
#include "ntk_log.h"
#include "ntk_metrics.h"
#include "ntk_ntk.h"
#include "ntk_ntkvp.h"
#include "ntk_rng.h"
#include "ntk_signal.h"
#include "ntk_size.h"
#include "ntk_timer.h"


/* ----------------------------------------------------------------- schedule -- */

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

/* Entries the schedule is built in before repeats merge. */
static int64_t schedule_cap(const ntk_config *cfg) {
  const int64_t T = cfg->train.steps;
  switch (cfg->train.measure) {
    case NTK_MEASURE_EVERY: return 3 + T / cfg->train.measure_every;
    case NTK_MEASURE_LOG: return 2 + (int64_t)cfg->train.measure_points;
    default: return 2 + (int64_t)cfg->train.measure_steps_len;
  }
}

static int64_t schedule_count(const ntk_config *cfg) {
  const int64_t T = cfg->train.steps;
  int64_t c = schedule_cap(cfg);
  /* every: 0, the multiples of measure_every below T, and T */
  if (cfg->train.measure == NTK_MEASURE_EVERY)
    c = T > 0 ? 2 + (T - 1) / cfg->train.measure_every : 1;
  return c > T + 1 ? T + 1 : c;
}

static int build_schedule(const ntk_config *cfg, int64_t count, long long **steps, int *n);

int ntk_train_schedule_count(const ntk_config *cfg, int64_t *count) {
  const int64_t T = cfg->train.steps, c = schedule_count(cfg);
  *count = c;
  if (c > INT_MAX)
    return ntk_err_set(NTK_ERR_INPUT,
                       "train.steps %lld with train.measure %s makes %lld measurements, more than "
                       "%d (each is a kernel, its eigensolve and a trajectory row): measure less often",
                       (long long)T, ntk_config_enum_name("train.measure", cfg->train.measure),
                       (long long)c, INT_MAX);
  /* log and list merge repeats: a schedule of reasonable size is built to count them */
  if (cfg->train.measure != NTK_MEASURE_EVERY && c <= (1 << 20)) {
    long long *s = NULL;
    int u = 0;
    NTK_CHECK(build_schedule(cfg, c, &s, &u));
    free(s);
    *count = u;
  }
  return NTK_OK;
}

int ntk_train_schedule(const ntk_config *cfg, long long **steps, int *n) {
  int64_t count;
  NTK_CHECK(ntk_train_schedule_count(cfg, &count));
  NTK_CHECK(build_schedule(cfg, schedule_count(cfg), steps, n));
  return NTK_OK;
}

/* count: schedule_count's bound, at most INT_MAX. */
static int build_schedule(const ntk_config *cfg, int64_t count, long long **steps, int *n) {
  const long long T = cfg->train.steps;
  /* the log schedule merges its (non-decreasing) repeats as it goes: no more entries
   * than measurements, whatever train.measure_points is */
  const int64_t cap = cfg->train.measure == NTK_MEASURE_LIST ? schedule_cap(cfg) : count + 2;
  long long *s = ntk_malloc((size_t)cap * sizeof(long long), "the measurement schedule");
  if (!s) return ntk_err_code();
  int64_t c = 0;
  s[c++] = 0;
  s[c++] = T;
  if (T > 0) {
    if (cfg->train.measure == NTK_MEASURE_EVERY) {
      for (long long t = cfg->train.measure_every; t < T; t += cfg->train.measure_every) s[c++] = t;
    } else if (cfg->train.measure == NTK_MEASURE_LOG) {
      const int P = cfg->train.measure_points;
      /* P steps geometrically spaced from 1 to T (rounded; repeats at small t merge).
       * When consecutive points are less than 1 apart everywhere (ratio T^(1/(P-1)) with
       * T (ratio - 1) < 1, i.e. P - 1 > T ln T) the rounding hits every step: the same
       * set, without P evaluations. */
      if (P > 2 && (double)(P - 1) > (double)T * log((double)T) * 1.01 + 2.0) {
        for (long long t = 1; t < T; ++t) s[c++] = t;
      } else {
        long long last = -1;
        for (int i = 0; i < P; ++i) {
          double e = P > 1 ? (double)i / (P - 1) : 1.0;
          long long t = llround(pow((double)T, e));
          t = t < 1 ? 1 : t > T ? T : t;
          if (t != last && t != T) s[c++] = t;
          last = t;
        }
      }
    } else {
      for (int i = 0; i < cfg->train.measure_steps_len; ++i) s[c++] = cfg->train.measure_steps[i];
    }
  }
  qsort(s, (size_t)c, sizeof *s, cmp_ll);
  int u = 0;
  for (int64_t i = 0; i < c; ++i)
    if (u == 0 || s[i] != s[u - 1]) s[u++] = s[i];
  *steps = s;
  *n = u;
  return NTK_OK;
}

static int is_measure_step(const ntk_trainer *t, long long step) {
  int lo = 0, hi = t->nsched - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (t->sched[mid] == step) return 1;
    if (t->sched[mid] < step) lo = mid + 1; else hi = mid - 1;
  }
  return 0;
}

/* --------------------------------------------------------------- prediction -- */

double ntk_train_predict_loss(const ntk_kernel_ref *ref, double lr, int N, long long t) {
  double s = ref->rest;
  for (int i = 0; i < ref->K; ++i) {
    double q = 1.0 - lr * ref->w[i] / N;
    /* |q| < 1 decays, |q| > 1 grows: pow keeps both right, also for huge t */
    s += pow(q * q, (double)t) * ref->energy[i];
  }
  return s / (2.0 * N);
}

static void ref_free(ntk_kernel_ref *r) {
  free(r->w);
  free(r->energy);
  ntk_dmat_free(&r->tb);
  ntk_dmat_free(&r->tp);
  memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------ test-loss prediction -- */

/* In the kernel regime the test outputs move by -(eta/N) Theta(X_test, X) r_s at step s
 * and r_s = (I - (eta/N) Theta)^s r_0, so after t steps
 *   f_t(X_test) = f_0(X_test) - Theta(X_test, X) sum_i u_i u_i^T r_0 g_i(t),
 *   g_i(t) = (eta/N) sum_{s<t} (1 - eta w_i/N)^s = (1 - (1 - eta w_i/N)^t) / w_i.
 * Directions at or below the spectrum's rounding floor, and those outside the K computed
 * vectors, are not learned (g = 0), as `rest` is frozen in the train prediction. */
static double learned_weight(double w, double lr, int N, long long t, double floor) {
  if (!(w > floor)) return 0.0;
  const double x = lr * w / N;
  /* 1 - (1 - x)^t loses every digit for x t << 1 when written so */
  if (x < 1.0) return -expm1((double)t * log1p(-x)) / w;
  return (1.0 - pow(1.0 - x, (double)t)) / w;
}

/* f_0(X_test) - Y_test of the evaluation network at the initial parameters, once. */
static int test_residual0(ntk_trainer *t) {
  if (t->test_r0.a) return NTK_OK;
  const ntk_data *D = t->data;
  ntk_forward F;
  NTK_CHECK(ntk_model_forward(t->model, &D->x_test, NULL, &F));
  int err = ntk_dmat_create(t->g, D->n_test, F.f.n, &t->test_r0);
  if (!err) err = ntk_metrics_residual(&F.f, &D->y_test, &t->test_r0);
  ntk_forward_free(&F);
  NTK_CHECK(err);
  return NTK_OK;
}

/* ref->tb = cross U, ref->tp = U^T R: the test prediction of a kernel with eigenvectors U
 * (N x K), cross kernel Theta(X_test, X) and step-0 train residual R. */
static int test_reference(ntk_trainer *t, const ntk_dmat *cross, const ntk_dmat *U,
                          const ntk_dmat *R, ntk_kernel_ref *ref) {
  NTK_CHECK(test_residual0(t));
  ntk_dmat_free(&ref->tb);
  ntk_dmat_free(&ref->tp);
  NTK_CHECK(ntk_dmat_create(t->g, cross->m, U->n, &ref->tb));
  NTK_CHECK(ntk_dmat_gemm('N', 'N', 1.0, cross, U, 0.0, &ref->tb));
  NTK_CHECK(ntk_dmat_create(t->g, U->n, R->n, &ref->tp));
  NTK_CHECK(ntk_dmat_gemm('T', 'N', 1.0, U, R, 0.0, &ref->tp));
  return NTK_OK;
}

/* The predicted test loss at `step` from `ref`; NaN when it has no test reference. */
static int predict_test_loss(const ntk_trainer *t, const ntk_kernel_ref *ref, long long step,
                             double *loss) {
  *loss = NAN;
  if (!ref->tb.a || !t->test_r0.a) return NTK_OK;
  const double floor = ntk_metrics_rounding_floor(t->N, ref->w[0]);
  ntk_dmat C = {0}, E = {0};
  int err = ntk_dmat_copy(&ref->tp, &C);
  for (int il = 0; !err && il < C.mloc; ++il) {
    const double s = learned_weight(ref->w[ntk_dmat_row_l2g(&C, il)], t->lr, t->N, step, floor);
    for (int jl = 0; jl < C.nloc; ++jl) C.a[il + (size_t)jl * C.lld] *= s;
  }
  if (!err) err = ntk_dmat_copy(&t->test_r0, &E);
  if (!err) err = ntk_dmat_gemm('N', 'N', -1.0, &ref->tb, &C, 1.0, &E);
  if (!err) {
    const double f = ntk_dmat_norm_fro(&E);
    *loss = f * f / (2.0 * E.m);
  }
  ntk_dmat_free(&C);
  ntk_dmat_free(&E);
  NTK_CHECK(err);
  return NTK_OK;
}

/* ---------------------------------------------------------------- lifecycle -- */

int ntk_train_init(ntk_trainer *t, const ntk_config *cfg, const ntk_grid *g, ntk_model *model,
                   const ntk_data *data, ntk_output *out) {
  memset(t, 0, sizeof *t);
  t->cfg = cfg;
  t->g = g;
  t->model = model;
  t->data = data;
  t->out = out;
  t->N = data->n_train;
  t->K = cfg->ntk.top_k > 0 ? cfg->ntk.top_k : t->N;
  t->ng = NTK_NGROUPS(model->L);
  t->want_vectors = ntk_config_wants_eigenvectors(cfg);
  t->matrix_free = cfg->ntk.method == NTK_METHOD_MATRIX_FREE;
  t->loss0 = NAN;
  t->lr = NAN;
  NTK_ALLOC(t->w, t->K, "eigenvalues");
  NTK_ALLOC(t->group_trace, t->ng, "group traces");
  if (!t->matrix_free) NTK_CHECK(ntk_dmat_create(g, t->N, t->N, &t->theta));
  NTK_CHECK(ntk_train_schedule(cfg, &t->sched, &t->nsched));
  return NTK_OK;
}

void ntk_train_free(ntk_trainer *t) {
  free(t->w);
  free(t->group_trace);
  free(t->sched);
  ntk_dmat_free(&t->theta);
  ntk_dmat_free(&t->vectors);
  ntk_dmat_free(&t->theta0);
  ntk_dmat_free(&t->test_r0);
  for (int q = 0; q < 4; ++q) ntk_dmat_free(&t->gbuf[q]);
  ref_free(&t->ref0);
  ref_free(&t->refinf);
  memset(t, 0, sizeof *t);
}

/* Eigen-decompose `theta` (K pairs) and project the residual R on the vectors; with a
 * cross kernel Theta(X_test, X) (may be NULL) also the test-loss reference. */
static int kernel_reference(ntk_trainer *t, const ntk_dmat *theta, const ntk_dmat *cross, int K,
                            const ntk_dmat *R, ntk_kernel_ref *ref) {
  ntk_dmat U = {0};
  ref_free(ref);
  ref->K = K;
  NTK_ALLOC(ref->w, K, "reference eigenvalues");
  NTK_ALLOC(ref->energy, K, "reference projections");
  ntk_timer_start(NTK_PHASE_EIGENSOLVE);
  int err = ntk_eig_solve(t->cfg->eigensolver.type, theta, K, 1, ref->w, &U);
  ntk_timer_stop(NTK_PHASE_EIGENSOLVE);
  double total = 0.0, in = 0.0;
  if (!err) err = ntk_metrics_residual_energy(&U, R, ref->energy, &total);
  if (!err && cross) err = test_reference(t, cross, &U, R, ref);
  ntk_dmat_free(&U);
  NTK_CHECK(err);
  for (int i = 0; i < K; ++i) in += ref->energy[i];
  /* the part of r_0 the top K vectors do not see is taken as frozen (lambda ~ 0) */
  ref->rest = K < t->N && total > in ? total - in : 0.0;
  return NTK_OK;
}

/* Train-set residual of the evaluation network (N x k, created here) and its loss.  keep
 * (may be NULL) receives the forward states, for the kernel of the same network. */
static int eval_residual(const ntk_trainer *t, ntk_dmat *R, double *loss, double *acc,
                         ntk_forward *keep) {
  const ntk_data *D = t->data;
  ntk_forward F;
  NTK_CHECK(ntk_model_forward(t->model, &D->x_train, NULL, &F));
  int err = ntk_metrics_loss(&F.f, &D->y_train, D->classification, loss, acc);
  if (!err) err = ntk_dmat_create(t->g, F.f.m, F.f.n, R);
  if (!err) err = ntk_metrics_residual(&F.f, &D->y_train, R);
  if (keep && !err)
    *keep = F;
  else
    ntk_forward_free(&F);
  NTK_CHECK(err);
  return NTK_OK;
}

int ntk_train_set_infinite_reference(ntk_trainer *t, const ntk_dmat *theta_inf,
                                     const ntk_dmat *cross_inf) {
  ntk_dmat R = {0};
  double loss, acc;
  NTK_CHECK(eval_residual(t, &R, &loss, &acc, NULL));
  int err = kernel_reference(t, theta_inf, cross_inf, t->N, &R, &t->refinf);
  ntk_dmat_free(&R);
  NTK_CHECK(err);
  return NTK_OK;
}

/* -------------------------------------------------------------- measurement -- */

/* What one measurement computes: the row it appends to /trajectory. */
typedef struct {
  double train_loss, train_acc, test_loss, test_acc;
  ntk_kernel_metrics km;
  double *energy; /* K residual energies along the eigenvectors; NULL without vectors */
  double drift, eig_drift, shift, norm2;
  int weyl;
  double pred, pred_inf, ratio; /* training runs only */
  double pred_test, pred_test_inf; /* training runs with a test set */
  /* ntk.method matrix_free only */
  double rayleigh;   /* sum_c y_c^T Theta y_c / sum_c ||y_c||^2 */
  double *residual;  /* K residual norms ||Theta u_i - lambda_i u_i|| */
  double fro_se;     /* standard error of the Hutchinson ||Theta||_F; NaN without probes */
  long long products; /* the eigensolve's products */
} measure_row;

/* The evaluation network's losses and the train residual R (created here).  The test set
 * goes first: the train set's forward states are then the only ones held, and fwd (may be
 * NULL) keeps them for the kernel of the same network. */
static int measure_losses(const ntk_trainer *t, measure_row *r, ntk_dmat *R, ntk_forward *fwd) {
  const ntk_data *D = t->data;
  int err = NTK_OK;
  ntk_timer_start(NTK_PHASE_METRICS);
  if (D->n_test > 0) {
    ntk_forward F;
    err = ntk_model_forward(t->model, &D->x_test, NULL, &F);
    if (!err) {
      err = ntk_metrics_loss(&F.f, &D->y_test, D->classification, &r->test_loss, &r->test_acc);
      ntk_forward_free(&F);
    }
  }
  if (!err) err = eval_residual(t, R, &r->train_loss, &r->train_acc, fwd);
  ntk_timer_stop(NTK_PHASE_METRICS);
  NTK_CHECK(err);
  return NTK_OK;
}

/* 0 (with a warning) when the loss or the kernel is not finite (kernel_finite, only asked
 * when the loss is finite): nothing of this step is then written, since a NaN kernel would
 * only stall the eigensolver. */
static int finite_or_warn(long long step, double train_loss, int kernel_finite) {
  if (isfinite(train_loss) && kernel_finite) return 1;
  ntk_log_warn("step %lld: the %s is not finite: stopping (diverged)", step,
               isfinite(train_loss) ? "kernel" : "train loss");
  return 0;
}

static int measure_finite(const ntk_trainer *t, long long step, const measure_row *r) {
  return finite_or_warn(step, r->train_loss,
                        isfinite(r->train_loss) && ntk_metrics_all_finite(&t->theta));
}

/* The K eigenpairs of Theta_t (vectors when the run keeps them). */
static int measure_eigensolve(ntk_trainer *t) {
  ntk_dmat_free(&t->vectors);
  ntk_timer_start(NTK_PHASE_EIGENSOLVE);
  int err = ntk_eig_solve(t->cfg->eigensolver.type, &t->theta, t->K, t->want_vectors, t->w,
                          t->want_vectors ? &t->vectors : NULL);
  ntk_timer_stop(NTK_PHASE_EIGENSOLVE);
  NTK_CHECK(err);
  return NTK_OK;
}

/* The spectral metrics of Theta_t (matrix-free: measure_matrix_free's) and the residual's
 * energy along its eigenvectors. */
static int measure_spectrum(const ntk_trainer *t, const ntk_dmat *R, measure_row *r) {
  if (!t->matrix_free) NTK_CHECK(ntk_metrics_kernel(&t->theta, t->w, t->K, &t->data->y_train, &r->km));
  if (!t->want_vectors) return NTK_OK;
  r->energy = ntk_malloc((size_t)t->K * sizeof(double), "residual energies");
  if (!r->energy) return ntk_err_code();
  NTK_CHECK(ntk_metrics_residual_energy(&t->vectors, R, r->energy, NULL));
  return NTK_OK;
}

/* Step 0 fixes the reference of every later measurement and of the prediction: Theta_0,
 * its spectrum and r_0's projections, the initial loss, the learning rate. */
static int measure_fix_reference(ntk_trainer *t, const measure_row *r) {
  const ntk_config *cfg = t->cfg;
  const int N = t->N, K = t->K;
  if (!t->matrix_free) NTK_CHECK(ntk_dmat_copy(&t->theta, &t->theta0));
  t->theta0_fro = r->km.frobenius;
  t->loss0 = r->train_loss;
  ref_free(&t->ref0);
  t->ref0.K = K;
  t->ref0.w = ntk_malloc((size_t)K * sizeof(double), "reference eigenvalues");
  t->ref0.energy = ntk_calloc((size_t)K, sizeof(double), "reference projections");
  if (!t->ref0.w || !t->ref0.energy) return ntk_err_code();
  memcpy(t->ref0.w, t->w, (size_t)K * sizeof(double));
  if (r->energy) {
    double total = 2.0 * N * r->train_loss, in = 0.0;
    memcpy(t->ref0.energy, r->energy, (size_t)K * sizeof(double));
    for (int i = 0; i < K; ++i) in += r->energy[i];
    t->ref0.rest = K < N && total > in ? total - in : 0.0;
  }
  t->lr = cfg->train.lr > 0.0 ? cfg->train.lr : cfg->train.lr_scale * 2.0 * N / t->w[0];
  return NTK_OK;
}

/* How far Theta_t moved from Theta_0: relative drift, the largest eigenvalue shift, and
 * (after step 0) ||Theta_t - Theta_0||_2 with Weyl's bound on the shift. */
static int measure_change(const ntk_trainer *t, long long step, measure_row *r) {
  const int N = t->N, K = t->K;
  if (t->matrix_free) {
    /* the top K eigenvalues' shift is exact; the kernel's change needs the kernels, and
     * Weyl's check its norm: not checked (-1) */
    r->shift = ntk_metrics_max_shift(t->w, t->ref0.w, K);
    r->eig_drift = r->shift / t->ref0.w[0];
    r->drift = r->norm2 = NAN;
    r->weyl = -1;
    return NTK_OK;
  }
  r->drift = ntk_dmat_diff_fro(&t->theta, &t->theta0) / t->theta0_fro;
  r->shift = ntk_metrics_max_shift(t->w, t->ref0.w, K);
  r->eig_drift = r->shift / t->ref0.w[0];
  if (step == 0) return NTK_OK;
  ntk_timer_stop(NTK_PHASE_METRICS);
  ntk_timer_start(NTK_PHASE_EIGENSOLVE);
  int err = ntk_metrics_diff_norm2(t->cfg->eigensolver.type, &t->theta, &t->theta0, &r->norm2);
  ntk_timer_stop(NTK_PHASE_EIGENSOLVE);
  ntk_timer_start(NTK_PHASE_METRICS);
  NTK_CHECK(err);
  r->weyl = ntk_metrics_weyl_holds(r->shift, r->norm2, N, t->ref0.w[0]);
  return NTK_OK;
}

/* Training runs: the kernel-regime prediction of the train loss and the stability ratio
 * eta lambda_max / 2N; the first sign of instability is warned about once. */
static void measure_prediction(ntk_trainer *t, long long step, measure_row *r) {
  const int N = t->N;
  r->pred = ntk_train_predict_loss(&t->ref0, t->lr, N, step);
  if (t->refinf.K > 0) r->pred_inf = ntk_train_predict_loss(&t->refinf, t->lr, N, step);
  r->ratio = t->lr * r->km.lambda_max / (2.0 * N);
  if (r->ratio > 1.0 || (step > 0 && r->train_loss > t->loss0)) {
    if (!t->unstable)
      ntk_log_warn("step %lld: unstable (eta lambda_max / 2N = %.3f, train loss %.3e vs %.3e "
                   "at step 0)", step, r->ratio, r->train_loss, t->loss0);
    t->unstable = 1;
  }
}

/* Whether the step-0 reference is fixed: Theta_0 is kept, or, matrix-free, its spectrum. */
static int have_reference(const ntk_trainer *t) {
  return t->theta0.a != NULL || (t->matrix_free && t->ref0.K > 0);
}

/* Every metric of Theta_t (the METRICS phase). */
static int measure_metrics(ntk_trainer *t, long long step, const ntk_dmat *R, measure_row *r) {
  ntk_timer_start(NTK_PHASE_METRICS);
  int err = measure_spectrum(t, R, r);
  if (!err && step == 0 && !have_reference(t)) err = measure_fix_reference(t, r);
  if (!err && (step > 0 || have_reference(t))) err = measure_change(t, step, r);
  if (!err && t->cfg->train.steps > 0) measure_prediction(t, step, r);
  ntk_timer_stop(NTK_PHASE_METRICS);
  NTK_CHECK(err);
  return NTK_OK;
}

/* Step 0 of a training run with a test set: the cross kernel Theta_0(X_test, X) of the
 * network ntk.network measures, mapped on Theta_0's eigenvectors (t->vectors), for the
 * test-loss prediction.  A run without eigenvectors has no prediction (NaN). */
static int measure_test_reference(ntk_trainer *t, const ntk_dmat *R) {
  const ntk_data *D = t->data;
  if (D->n_test == 0 || t->cfg->train.steps == 0 || !t->vectors.a || t->ref0.tb.a) return NTK_OK;
  ntk_dmat C = {0};
  int err = ntk_dmat_create(t->g, D->n_test, t->N, &C);
  if (!err) err = ntk_ntk_cross_for_config(t->model, &D->x_test, &D->x_train, 0, &C);
  ntk_timer_start(NTK_PHASE_METRICS);
  if (!err) err = test_reference(t, &C, &t->vectors, R, &t->ref0);
  ntk_timer_stop(NTK_PHASE_METRICS);
  ntk_dmat_free(&C);
  NTK_CHECK(err);
  return NTK_OK;
}

/* Training runs: the kernel-regime test loss from Theta_0 and from Theta_inf. */
static int measure_test_prediction(const ntk_trainer *t, long long step, measure_row *r) {
  if (t->cfg->train.steps == 0) return NTK_OK;
  ntk_timer_start(NTK_PHASE_METRICS);
  int err = predict_test_loss(t, &t->ref0, step, &r->pred_test);
  if (!err) err = predict_test_loss(t, &t->refinf, step, &r->pred_test_inf);
  ntk_timer_stop(NTK_PHASE_METRICS);
  NTK_CHECK(err);
  return NTK_OK;
}

/* The row of `step` appended to /trajectory, flushed. */
static int measure_append(ntk_trainer *t, long long step, const measure_row *r) {
  const ntk_config *cfg = t->cfg;
  const ntk_data *D = t->data;
  ntk_output *out = t->out;
  const int K = t->K, training = cfg->train.steps > 0;
  const ntk_kernel_metrics km = r->km;
  int err = NTK_OK;
  ntk_timer_start(NTK_PHASE_OUTPUT);
  ntk_series_value row[NTK_TRAJ_COUNT];
  memset(row, 0, sizeof row);
  ntk_series_int(row, NTK_TRAJ_STEP, step);
  ntk_series_row(row, NTK_TRAJ_EIGENVALUES, K, t->w);
  ntk_series_scalar(row, NTK_TRAJ_LAMBDA_MAX, km.lambda_max);
  ntk_series_scalar(row, NTK_TRAJ_LAMBDA_MIN, km.lambda_min);
  ntk_series_scalar(row, NTK_TRAJ_CONDITION_NUMBER, km.condition_number);
  ntk_series_scalar(row, NTK_TRAJ_EFFECTIVE_RANK, km.effective_rank);
  ntk_series_scalar(row, NTK_TRAJ_TRACE, km.trace);
  ntk_series_scalar(row, NTK_TRAJ_FROBENIUS_NORM, km.frobenius);
  ntk_series_scalar(row, NTK_TRAJ_KERNEL_TARGET_ALIGNMENT, km.alignment);
  ntk_series_scalar(row, NTK_TRAJ_DRIFT, r->drift);
  ntk_series_scalar(row, NTK_TRAJ_EIGENVALUE_DRIFT, r->eig_drift);
  ntk_series_scalar(row, NTK_TRAJ_EIGENVALUE_SHIFT, r->shift);
  ntk_series_scalar(row, NTK_TRAJ_NTK_CHANGE_NORM2, r->norm2);
  ntk_series_int(row, NTK_TRAJ_WEYL_OK, r->weyl);
  ntk_series_scalar(row, NTK_TRAJ_TRAIN_LOSS, r->train_loss);
  ntk_series_scalar(row, NTK_TRAJ_TEST_LOSS, r->test_loss);
  if (D->classification) {
    ntk_series_scalar(row, NTK_TRAJ_TRAIN_ACCURACY, r->train_acc);
    ntk_series_scalar(row, NTK_TRAJ_TEST_ACCURACY, r->test_acc);
  }
  ntk_series_row(row, NTK_TRAJ_LAYER_TRACE, t->ng, t->group_trace);
  if (r->energy) ntk_series_row(row, NTK_TRAJ_RESIDUAL_ENERGY, K, r->energy);
  if (training) {
    ntk_series_scalar(row, NTK_TRAJ_PREDICTED_TRAIN_LOSS, r->pred);
    if (t->refinf.K > 0) ntk_series_scalar(row, NTK_TRAJ_PREDICTED_TRAIN_LOSS_INFINITE, r->pred_inf);
    ntk_series_scalar(row, NTK_TRAJ_PREDICTED_TEST_LOSS, r->pred_test);
    if (t->refinf.K > 0)
      ntk_series_scalar(row, NTK_TRAJ_PREDICTED_TEST_LOSS_INFINITE, r->pred_test_inf);
    ntk_series_scalar(row, NTK_TRAJ_STABILITY_RATIO, r->ratio);
  }
  if (t->matrix_free) {
    ntk_series_scalar(row, NTK_TRAJ_TARGET_RAYLEIGH_QUOTIENT, r->rayleigh);
    ntk_series_row(row, NTK_TRAJ_EIGENPAIR_RESIDUAL, K, r->residual);
    ntk_series_int(row, NTK_TRAJ_EIGENSOLVER_PRODUCTS, r->products);
    ntk_series_scalar(row, NTK_TRAJ_FROBENIUS_NORM_STDERR, r->fro_se);
  }
  if (cfg->output.save_ntk) ntk_series_dmat(row, NTK_TRAJ_NTK, &t->theta);
  if (cfg->output.save_eigenvectors) ntk_series_dmat(row, NTK_TRAJ_EIGENVECTORS, &t->vectors);
  err = ntk_output_append_measurement(out, row);
  ntk_timer_stop(NTK_PHASE_OUTPUT);
  NTK_CHECK(err);
  return NTK_OK;
}

/* The progress line of the step; *diverged when the train loss outgrew
 * train.divergence_factor times its start (the row is written). */
static void measure_report(const ntk_trainer *t, long long step, const measure_row *r,
                           int *diverged) {
  const ntk_config *cfg = t->cfg;
  const int training = cfg->train.steps > 0;
  const ntk_kernel_metrics *km = &r->km;
  if (training && t->matrix_free)
    ntk_log_info("step %lld: train loss %.6e (kernel regime %.6e)  lambda_max %.6e  "
                 "(%lld products)", step, r->train_loss, r->pred, km->lambda_max, r->products);
  else if (training)
    ntk_log_info("step %lld: train loss %.6e (kernel regime %.6e)  lambda_max %.6e  drift %.3e%s",
                 step, r->train_loss, r->pred, km->lambda_max, r->drift,
                 r->weyl ? "" : "  WEYL VIOLATED");
  else if (t->matrix_free)
    ntk_log_info("lambda_max %.6e  lambda_%d %.6e  trace %.6e  target Rayleigh quotient %.6e  "
                 "(%lld products)", km->lambda_max, t->K, t->w[t->K - 1], km->trace,
                 r->rayleigh, r->products);
  else
    ntk_log_info("lambda_max %.6e  lambda_min %.6e  condition %.3e  effective rank %.2f  alignment %.4f",
                 km->lambda_max, km->lambda_min, km->condition_number, km->effective_rank,
                 km->alignment);
  if (!training)
    ntk_log_info("train loss %.6e%s", r->train_loss, t->data->n_test > 0 ? "" : " (no test set)");
  if (training && step > 0 && r->train_loss > cfg->train.divergence_factor * t->loss0) {
    ntk_log_warn("step %lld: train loss %.3e exceeds %g x the initial %.3e: stopping (diverged)",
                 step, r->train_loss, cfg->train.divergence_factor, t->loss0);
    *diverged = 1;
  }
}

/* ------------------------------------------------- matrix-free measurement -- */

static int ntkvp_apply(void *op, const ntk_dmat *x, ntk_dmat *y) {
  return ntk_ntkvp_apply(op, x, y);
}

/* sum_c y_c^T Theta y_c / sum_c ||y_c||^2 with one product per output; y_c = Y e_c puts
 * column c in the N x 1 layout of the operator. */
static int target_rayleigh(const ntk_trainer *t, ntk_ntkvp *op, double *q) {
  const ntk_dmat *Y = &t->data->y_train;
  const ntk_grid *g = t->g;
  ntk_dmat e = {0}, yc = {0}, ty = {0};
  double part[2] = {0.0, 0.0}, tot[2] = {0.0, 0.0};
  int err = ntk_dmat_create(g, Y->n, 1, &e);
  if (!err) err = ntk_dmat_create(g, t->N, 1, &yc);
  if (!err) err = ntk_dmat_create(g, t->N, 1, &ty);
  err = ntk_err_sync(g->comm, err);
  for (int c = 0; !err && c < Y->n; ++c) {
    int il;
    ntk_dmat_zero(&e);
    if (e.nloc > 0 && ntk_dmat_row_g2l(&e, c, &il)) e.a[il] = 1.0;
    err = ntk_dmat_gemm('N', 'N', 1.0, Y, &e, 0.0, &yc);
    if (!err) err = ntk_ntkvp_apply(op, &yc, &ty);
    for (int i = 0; !err && yc.nloc > 0 && i < yc.mloc; ++i) {
      part[0] += yc.a[i] * ty.a[i];
      part[1] += yc.a[i] * yc.a[i];
    }
  }
  if (!err) MPI_Allreduce(part, tot, 2, MPI_DOUBLE, MPI_SUM, g->comm);
  ntk_dmat_free(&e);
  ntk_dmat_free(&yc);
  ntk_dmat_free(&ty);
  NTK_CHECK(err);
  *q = tot[0] / tot[1];
  return NTK_OK;
}

/* x := (I - U U^T) x for the top-K eigenvectors U (N x K) and an N x 1 x; c is K x 1. */
static int deflate(const ntk_dmat *U, ntk_dmat *c, ntk_dmat *x) {
  NTK_CHECK(ntk_dmat_gemm('T', 'N', 1.0, U, x, 0.0, c));
  return ntk_dmat_gemm('N', 'N', -1.0, U, c, 1.0, x);
}

/* ||Theta||_F^2 = sum_i<K lambda_i^2 + tr(Theta_P^2), Theta_P = P Theta P with P = I - U U^T
 * off the top K eigenvectors; tr(Theta_P^2) = E ||Theta_P z||^2 for Rademacher z (Hutchinson),
 * averaged over s probes, one product each.  Deflating the top K removes what dominates an
 * NTK's Frobenius norm, and with it most of the estimate's variance.  z_i is a function of
 * (seed, sample i, probe, step): the same for any rank count and on a resumed run.
 * *fro2: the estimate of ||Theta||_F^2; *se: the standard error of its square root,
 * ||Theta||_F (delta method; NaN with one probe). */
static int frobenius_hutchinson(const ntk_trainer *t, ntk_ntkvp *op, long long step, double *fro2,
                                double *se) {
  const ntk_grid *g = t->g;
  const int s = t->cfg->eigensolver.frobenius_probes, K = t->K;
  ntk_dmat z = {0}, y = {0}, c = {0};
  double *q = ntk_malloc((size_t)s * sizeof(double), "Hutchinson probes");
  int err = q ? NTK_OK : NTK_ERR_MEMORY;
  if (!err) err = ntk_dmat_create(g, t->N, 1, &z);
  if (!err) err = ntk_dmat_create(g, t->N, 1, &y);
  if (!err) err = ntk_dmat_create(g, K, 1, &c);
  err = ntk_err_sync(g->comm, err);
  for (int j = 0; !err && j < s; ++j) {
    for (int i = 0; z.nloc > 0 && i < z.mloc; ++i)
      z.a[i] = ntk_rng_uniform(t->cfg->seed, NTK_STREAM_HUTCHINSON, (uint64_t)ntk_dmat_row_l2g(&z, i),
                               (uint64_t)j, (uint64_t)step) < 0.5 ? -1.0 : 1.0;
    err = deflate(&t->vectors, &c, &z);
    if (!err) err = ntk_ntkvp_apply(op, &z, &y);
    if (!err) err = deflate(&t->vectors, &c, &y);
    double part = 0.0;
    for (int i = 0; !err && y.nloc > 0 && i < y.mloc; ++i) part += y.a[i] * y.a[i];
    if (!err) MPI_Allreduce(&part, &q[j], 1, MPI_DOUBLE, MPI_SUM, g->comm);
  }
  ntk_dmat_free(&z);
  ntk_dmat_free(&y);
  ntk_dmat_free(&c);
  if (!err) {
    double mean = 0.0, var = 0.0, top = 0.0;
    for (int j = 0; j < s; ++j) mean += q[j] / s;
    for (int j = 0; j < s; ++j) var += (q[j] - mean) * (q[j] - mean) / (s > 1 ? s - 1 : 1);
    for (int i = 0; i < K; ++i) top += t->w[i] * t->w[i];
    *fro2 = top + mean;
    *se = s > 1 ? sqrt(var / s) / (2.0 * sqrt(*fro2)) : NAN;
  }
  free(q);
  return err;
}

/* ntk.method matrix_free: the operator Theta v on the network of the step (fwd: the
 * evaluation network's states, borrowed), the exact trace and layer traces, the top K
 * eigenpairs by SLEPc with their residuals, and the targets' Rayleigh quotient; the
 * metrics that need the whole kernel are NaN (docs/METRICS.md). */
static int measure_matrix_free(ntk_trainer *t, long long step, measure_row *r,
                               const ntk_forward *fwd, int *diverged) {
  const ntk_config *cfg = t->cfg;
  ntk_ntkvp *op = NULL;
  double trace = NAN;
  ntk_eigs_stats st = {0};
  int err = ntk_ntkvp_create(t->model, &t->data->x_train, step, fwd, &op);
  if (!err) {
    ntk_timer_start(NTK_PHASE_METRICS);
    err = ntk_ntkvp_trace(op, &trace, t->group_trace);
    ntk_timer_stop(NTK_PHASE_METRICS);
  }
  if (!err && !finite_or_warn(step, r->train_loss, isfinite(trace))) *diverged = 1;
  if (!err && !*diverged) {
    r->residual = ntk_malloc((size_t)t->K * sizeof(double), "eigenpair residuals");
    err = ntk_err_sync(t->g->comm, r->residual ? NTK_OK : NTK_ERR_MEMORY);
  }
  if (!err && !*diverged) {
    const ntk_eigs_options opt = {cfg->eigensolver.matrix_free, cfg->eigensolver.tol,
                                  cfg->eigensolver.max_it, cfg->eigensolver.ncv};
    ntk_dmat_free(&t->vectors);
    ntk_timer_start(NTK_PHASE_EIGENSOLVE);
    err = ntk_eigs_solve(t->g, t->N, ntkvp_apply, op, &opt, t->K, t->want_vectors, t->w,
                         r->residual, t->want_vectors ? &t->vectors : NULL, &st);
    ntk_timer_stop(NTK_PHASE_EIGENSOLVE);
    r->products = st.products;
  }
  double fro2 = NAN;
  if (!err && !*diverged) {
    ntk_timer_start(NTK_PHASE_METRICS);
    err = target_rayleigh(t, op, &r->rayleigh);
    if (!err && cfg->eigensolver.frobenius_probes > 0)
      err = frobenius_hutchinson(t, op, step, &fro2, &r->fro_se);
    ntk_timer_stop(NTK_PHASE_METRICS);
  }
  ntk_ntkvp_destroy(&op);
  NTK_CHECK(err);
  if (*diverged) return NTK_OK;
  /* NaN without probes: the alignment and the effective rank need ||Theta||_F */
  r->km = (ntk_kernel_metrics){.lambda_max = t->w[0], .lambda_min = NAN,
                               .condition_number = NAN, .effective_rank = trace * trace / fro2,
                               .trace = trace, .frobenius = sqrt(fro2),
                               .alignment = r->rayleigh / sqrt(fro2)};
  /* SLEPc's convergence test uses its own residual estimate; the recomputed one can sit at
   * the rounding floor (eps ||Theta||) above tol * lambda for eigenvalues near that floor */
  if (st.max_rel_residual > cfg->eigensolver.tol)
    ntk_log_warn("step %lld: an eigenpair's recomputed residual is %.2e lambda, above "
                 "eigensolver.tol = %.1e (eigenvalues near the rounding floor eps lambda_max?)",
                 step, st.max_rel_residual, cfg->eigensolver.tol);
  ntk_log_debug("step %lld: matrix-free eigensolve: %lld products, %d restarts, basis %d, "
                "largest relative residual %.2e (tolerance %.1e)", step, st.products,
                st.iterations, st.ncv, st.max_rel_residual, cfg->eigensolver.tol);
  return NTK_OK;
}

int ntk_train_measure(ntk_trainer *t, long long step, int *diverged) {
  /* the loss's forward pass is the evaluation network's: with ntk.network eval the kernel
   * is assembled from its states instead of a second pass */
  const int reuse = t->cfg->ntk.network == NTK_NETWORK_EVAL;
  measure_row r = {.test_loss = NAN, .test_acc = NAN, .weyl = 1, .pred = NAN, .pred_inf = NAN,
                   .ratio = NAN, .pred_test = NAN, .pred_test_inf = NAN, .rayleigh = NAN,
                   .fro_se = NAN};
  ntk_dmat R = {0};
  ntk_forward fwd = {0};
  *diverged = 0;
  int err = measure_losses(t, &r, &R, reuse ? &fwd : NULL);
  if (t->matrix_free) {
    /* the operator borrows the forward states: they go after it */
    if (!err) err = measure_matrix_free(t, step, &r, reuse ? &fwd : NULL, diverged);
    ntk_forward_free(&fwd);
  } else {
    if (!err)
      err = ntk_ntk_for_config(t->model, &t->data->x_train, step, reuse ? &fwd : NULL, &t->theta,
                               t->group_trace);
    ntk_forward_free(&fwd);
    if (!err && !measure_finite(t, step, &r)) *diverged = 1;
    if (!err && !*diverged) err = measure_eigensolve(t);
  }
  if (!err && !*diverged) err = measure_metrics(t, step, &R, &r);
  if (!err && !*diverged && step == 0) err = measure_test_reference(t, &R);
  if (!err && !*diverged) err = measure_test_prediction(t, step, &r);
  if (!err && !*diverged) err = measure_append(t, step, &r);
  if (!err && !*diverged) measure_report(t, step, &r, diverged);
  free(r.energy);
  free(r.residual);
  ntk_dmat_free(&R);
  if (err) ntk_err_trace(__FILE__, __LINE__, __func__);
  return err;
}

/* ----------------------------------------------------------------- gradient -- */

/* The backward pass still needs a group's weights right after visiting it (to carry the
 * signal down), so each group's update waits until the next group is visited: only one
 * gradient is held at a time. */
typedef struct {
  ntk_model *M;
  ntk_dmat *pool; /* 4 buffers, reused by shape (a page-faulted n x n each step costs) */
  double lr;
  int pending;  /* group whose update waits, -1 none */
  ntk_dmat *gw; /* its weight gradient times -lr (shape of the weight) */
  double *gb;   /* its bias gradient times -lr (NULL: no bias) */
} grad_ctx;

static void group_params(ntk_model *M, int group, ntk_dmat **W, double **b) {
  *b = NULL;
  if (group == NTK_GROUP_FOURIER) {
    *W = &M->G;
  } else if (group == NTK_GROUP_INPUT) {
    *W = &M->W0;
    *b = M->b0;
  } else if (group == NTK_GROUP_OUTPUT(M->L)) {
    *W = &M->V;
    *b = M->b_out;
  } else {
    int l = group - 1;
    *W = &M->W[l - 1];
    *b = M->b + (size_t)(l - 1) * M->n;
  }
}

static void apply_pending(grad_ctx *c) {
  if (c->pending < 0) return;
  ntk_dmat *W;
  double *b;
  group_params(c->M, c->pending, &W, &b);
  const size_t len = (size_t)W->lld * W->nloc;
  const double *gw = c->gw->a;
  for (size_t e = 0; e < len; ++e) W->a[e] += gw[e];
  if (c->gb && b)
    for (int i = 0; i < W->m; ++i) b[i] += c->gb[i];
  c->gw = NULL;
  free(c->gb);
  c->gb = NULL;
  c->pending = -1;
}

static int visit_gradient(int group, const ntk_dmat *gsig, const ntk_dmat *a, double ws,
                          double bs, void *vctx) {
  grad_ctx *c = vctx;
  const ntk_grid *g = c->M->g;
  ntk_timer_start(NTK_PHASE_TRAIN);
  apply_pending(c);
  const int fo = gsig->n, fi = a->n, N = gsig->m;
  int err = NTK_OK, slot = -1;
  for (int q = 0; q < 4 && slot < 0; ++q)
    if (c->pool[q].a && c->pool[q].m == fo && c->pool[q].n == fi) slot = q;
  for (int q = 0; q < 4 && slot < 0; ++q)
    if (!c->pool[q].a && !(err = ntk_dmat_create(g, fo, fi, &c->pool[q]))) slot = q;
  if (!err && slot < 0) err = ntk_err_set(NTK_ERR_INTERNAL, "train: more than 4 weight shapes");
  if (!err) c->gw = &c->pool[slot];
  /* the step itself goes into the buffer: -lr * wscale * g^T a */
  if (!err) err = ntk_dmat_gemm('T', 'N', -c->lr * ws, gsig, a, 0.0, c->gw);
  ntk_timer_add_flops(NTK_PHASE_TRAIN, 2.0 * fo * fi * (double)N / g->size);
  if (!err && bs != 0.0) {
    /* sum over samples = over grid rows; each column lives on one process column, so one
     * reduction over all ranks both sums and replicates */
    c->gb = ntk_calloc((size_t)fo, sizeof(double), "a bias gradient");
    if (!c->gb) err = ntk_err_code();
    for (int jl = 0; !err && jl < gsig->nloc; ++jl) {
      const double *col = gsig->a + (size_t)jl * gsig->lld;
      double s = 0.0;
      for (int il = 0; il < gsig->mloc; ++il) s += col[il];
      c->gb[ntk_dmat_col_l2g(gsig, jl)] = -c->lr * bs * s;
    }
    if (!err) MPI_Allreduce(MPI_IN_PLACE, c->gb, fo, MPI_DOUBLE, MPI_SUM, g->comm);
  }
  c->pending = err ? -1 : group;
  ntk_timer_stop(NTK_PHASE_TRAIN);
  if (err) ntk_err_trace(__FILE__, __LINE__, __func__);
  return err;
}

typedef struct {
  double u;
  int i;
} keyed;

static int cmp_keyed(const void *a, const void *b) {
  const keyed *x = a, *y = b;
  if (x->u != y->u) return x->u < y->u ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

/* The minibatch of `step`: the B samples with the smallest keys u_i = U(seed, MINIBATCH,
 * step, i), i.e. a uniform B-subset without replacement, the same on every rank. */
static int draw_batch(const ntk_config *cfg, long long step, int N, int B, unsigned char *in) {
  keyed *k = ntk_malloc((size_t)N * sizeof *k, "minibatch keys");
  if (!k) return ntk_err_code();
  for (int i = 0; i < N; ++i) {
    k[i].u = ntk_rng_uniform(cfg->seed, NTK_STREAM_MINIBATCH, (uint64_t)step, (uint64_t)i, 0);
    k[i].i = i;
  }
  qsort(k, (size_t)N, sizeof *k, cmp_keyed);
  memset(in, 0, (size_t)N);
  for (int j = 0; j < B; ++j) in[k[j].i] = 1;
  free(k);
  return NTK_OK;
}

int ntk_train_step(ntk_trainer *t, long long step, double *loss) {
  const ntk_config *cfg = t->cfg;
  const ntk_data *D = t->data;
  ntk_model *M = t->model;
  const int N = t->N, L = M->L;
  double t0 = MPI_Wtime();
  double *xi = ntk_malloc((size_t)(L > 0 ? L : 1) * sizeof(double), "mask");
  if (!xi) return ntk_err_code();
  ntk_model_draw_mask(M, step, 0, xi);
  ntk_forward F;
  int err = ntk_model_forward(M, &D->x_train, xi, &F);
  free(xi);
  NTK_CHECK(err);
  t->forward_seconds += MPI_Wtime() - t0;
  ntk_dmat R = {0};
  unsigned char *in = NULL;
  grad_ctx c = {.M = M, .pool = t->gbuf, .lr = t->lr, .pending = -1};
  double acc;
  if ((err = ntk_metrics_loss(&F.f, &D->y_train, 0, loss, &acc))) goto done;
  if (!isfinite(*loss) || *loss > cfg->train.divergence_factor * t->loss0) goto done;
  if ((err = ntk_dmat_create(t->g, N, F.f.n, &R))) goto done;
  if ((err = ntk_metrics_residual(&F.f, &D->y_train, &R))) goto done;
  /* seed of the backward pass: dL/df = r/N (gd) or r/B on the batch rows (sgd) */
  if (cfg->train.optimizer == NTK_OPT_SGD) {
    const int B = cfg->train.batch_size;
    if (!(in = ntk_malloc((size_t)N, "minibatch flags"))) {
      err = ntk_err_code();
      goto done;
    }
    if ((err = draw_batch(cfg, step, N, B, in))) goto done;
    for (int il = 0; il < R.mloc; ++il) {
      double s = in[ntk_dmat_row_l2g(&R, il)] ? 1.0 / B : 0.0;
      for (int jl = 0; jl < R.nloc; ++jl) R.a[il + (size_t)jl * R.lld] *= s;
    }
  } else {
    const size_t len = (size_t)R.lld * R.nloc;
    for (size_t e = 0; e < len; ++e) R.a[e] /= N;
  }
  err = ntk_model_backward(M, &D->x_train, &F, &R, visit_gradient, &c);
  /* the backward's gathered panels are not held into the eigensolve */
  ntk_dmat_panels_release();
  if (err) goto done;
  ntk_timer_start(NTK_PHASE_TRAIN);
  apply_pending(&c);
  ntk_timer_stop(NTK_PHASE_TRAIN);
  t->steps_done++;
done:
  free(c.gb);
  free(in);
  ntk_dmat_free(&R);
  ntk_forward_free(&F);
  t->step_seconds += MPI_Wtime() - t0;
  if (err) ntk_err_trace(__FILE__, __LINE__, __func__);
  return err;
}

/* -------------------------------------------------------------------- loop -- */

int ntk_train_run(ntk_trainer *t, long long start, int start_measured, long long stop_at,
                  ntk_train_outcome *outcome, long long *last_step) {
  const ntk_config *cfg = t->cfg;
  const long long T = cfg->train.steps;
  *outcome = NTK_TRAIN_COMPLETE;
  for (long long s = start;; ++s) {
    *last_step = s;
    if (is_measure_step(t, s) && !(s == start && start_measured)) {
      int diverged;
      NTK_CHECK(ntk_train_measure(t, s, &diverged));
      if (diverged) {
        *outcome = NTK_TRAIN_DIVERGED;
        return NTK_OK;
      }
    }
    if (s >= T) return NTK_OK;
    /* the step boundary: every rank leaves the loop here or none does */
    const int sig = ntk_signal_agree(t->g->comm);
    const int stop = stop_at > 0 && s == stop_at;
    if (sig || stop) {
      if (sig)
        ntk_log_info("%s received: writing a checkpoint at step %lld", ntk_signal_name(sig), s);
      else
        ntk_log_info("--stop-at %lld: writing a checkpoint", s);
      ntk_timer_start(NTK_PHASE_OUTPUT);
      int err = ntk_checkpoint_write(t, s);
      ntk_timer_stop(NTK_PHASE_OUTPUT);
      NTK_CHECK(err);
      *outcome = NTK_TRAIN_INTERRUPTED;
      return NTK_OK;
    }
    if (cfg->train.checkpoint_every > 0 && s > start && s % cfg->train.checkpoint_every == 0) {
      ntk_timer_start(NTK_PHASE_OUTPUT);
      int err = ntk_checkpoint_write(t, s);
      ntk_timer_stop(NTK_PHASE_OUTPUT);
      NTK_CHECK(err);
    }
    double loss;
    NTK_CHECK(ntk_train_step(t, s, &loss));
    if (!isfinite(loss) || loss > cfg->train.divergence_factor * t->loss0) {
      ntk_log_warn("step %lld: train loss %.3e %s: stopping (diverged)", s, loss,
                   isfinite(loss) ? "exceeds train.divergence_factor x the initial loss"
                                  : "is not finite");
      *outcome = NTK_TRAIN_DIVERGED;
      return NTK_OK;
    }
  }
}

/* ------------------------------------------------------------------ resume -- */

int ntk_train_resume_output(ntk_trainer *t, long long start, int *start_measured) {
  ntk_output *o = t->out;
  long long rows = 0, *steps = NULL;
  *start_measured = 0;
  NTK_CHECK(ntk_output_read_steps(o, &steps, &rows));
  long long keep = 0;
  while (keep < rows && steps[keep] <= start) ++keep;
  if (keep > 0 && steps[keep - 1] == start) *start_measured = 1;
  free(steps);
  if (keep == 0)
    return ntk_err_set(NTK_ERR_INPUT, "--resume: %s has no measurement at or before step %lld",
                       o->partial, start);
  for (int i = 0; i < NTK_TRAJ_COUNT; ++i) {
    const char *name = ntk_schema_trajectory[i].path;
    long long r = 0;
    NTK_CHECK(ntk_output_rows(o, name, &r));
    if (r > keep) NTK_CHECK(ntk_output_truncate(o, name, keep));
    if (r > 0 && r < keep)
      return ntk_err_set(NTK_ERR_INPUT, "--resume: %s has %lld rows of %s, fewer than its %lld steps",
                         o->partial, r, name, keep);
  }
  if (rows > keep)
    ntk_log_info("resume: dropped %lld measurement(s) after step %lld", rows - keep, start);
  NTK_CHECK(ntk_output_flush(o));
  return NTK_OK;
}

/* ----------------------------------------------------------------- memory -- */

int64_t ntk_train_test_memory(const ntk_config *cfg, const ntk_grid *g, int N, int n_test,
                              int k) {
  if (cfg->train.steps == 0 || n_test == 0) return 0;
  const int K = cfg->ntk.top_k > 0 ? cfg->ntk.top_k : N;
  int64_t b = ntk_size_add(ntk_dmat_max_local_bytes(g, n_test, k),
                           ntk_size_add(ntk_dmat_max_local_bytes(g, n_test, K),
                                        ntk_dmat_max_local_bytes(g, K, k)));
  if (cfg->analytic.enabled)
    b = ntk_size_add(b, ntk_size_add(ntk_dmat_max_local_bytes(g, n_test, N),
                                     ntk_dmat_max_local_bytes(g, N, k)));
  return b;
}

void ntk_train_memory(const ntk_config *cfg, const ntk_grid *g, int N, int d, int k,
                      ntk_train_bytes *b) {
  const int m = cfg->fourier.features, p = ntk_config_input_dim(cfg, d);
  const int n = ntk_config_width(cfg, d), L = cfg->model.depth;
  const int K = cfg->ntk.top_k > 0 ? cfg->ntk.top_k : N;
  const int training = cfg->train.steps > 0;
  *b = (ntk_train_bytes){0};
  /* ntk.method matrix_free keeps no kernel and no Theta_0 */
  b->kernel = cfg->ntk.method == NTK_METHOD_MATRIX_FREE ? 0 : ntk_dmat_max_local_bytes(g, N, N);
  b->vectors = ntk_config_wants_eigenvectors(cfg) ? ntk_dmat_max_local_bytes(g, N, K) : 0;
  b->theta0 = training ? b->kernel : 0;
  if (training)
    b->grads = ntk_size_add(
        ntk_size_add(L > 0 ? ntk_dmat_max_local_bytes(g, n, n) : 0,
                     cfg->fourier.project ? ntk_dmat_max_local_bytes(g, n, p) : 0),
        ntk_size_add(ntk_dmat_max_local_bytes(g, k, n),
                     m > 0 && cfg->fourier.trainable ? ntk_dmat_max_local_bytes(g, m, d) : 0));
  b->schedule = ntk_size_mul(schedule_count(cfg), (int64_t)sizeof(long long));
}
