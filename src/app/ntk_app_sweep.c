/* `ntkspec sweep CONFIG --widths W1,W2,... [--seeds S] [--top-k K]`: the width study.
 *
 * For every width and seed the empirical NTK at initialisation is computed with ALL ranks
 * (the widths and seeds run one after another, each distributed over the whole grid, so a
 * width that needs the whole machine's memory still fits), and compared with the
 * infinite-width kernel of the same configuration: the relative Frobenius distance
 * ||Theta - Theta_inf||_F / ||Theta_inf||_F and the relative error of the top-K
 * eigenvalues.  The data are those of the base seed for every network; network seed s is
 * seed + s.  The log-log slope of the distance against the width is fitted by least
 * squares over all (width, seed) points, with a 95% confidence interval. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntk_analytic.h"
#include "ntk_app.h"
#include "ntk_data.h"
#include "ntk_eig.h"
#include "ntk_error.h"
#include "ntk_log.h"
#include "ntk_signal.h"
#include "ntk_model.h"
#include "ntk_ntk.h"
#include "ntk_timer.h"

#define NTK_SWEEP_MAX_WIDTHS 64

/* 0.975 quantile of Student's t with df degrees of freedom. */
static double t975(int df) {
  static const double tab[] = {0,      12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                               2.262,  2.228,  2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110,
                               2.101,  2.093,  2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
                               2.052,  2.048,  2.045, 2.042};
  if (df < 1) return NAN;
  if (df <= 30) return tab[df];
  const double z = 1.959964; /* Cornish-Fisher expansion, accurate to 1e-3 beyond 30 */
  return z + (z * z * z + z) / (4.0 * df) + (5 * pow(z, 5) + 16 * z * z * z + 3 * z) / (96.0 * df * df);
}

static int parse_widths(const char *text, int *widths, int *count) {
  *count = 0;
  const char *p = text;
  while (p && *p) {
    char *end;
    long w = strtol(p, &end, 10);
    if (end == p || w < 1 || w > 1L << 24 || (*end && *end != ','))
      return ntk_err_set(NTK_ERR_INPUT, "sweep: --widths: expected a list of positive integers like 64,128,256, got '%s'", text);
    if (*count >= NTK_SWEEP_MAX_WIDTHS)
      return ntk_err_set(NTK_ERR_INPUT, "sweep: --widths: at most %d widths", NTK_SWEEP_MAX_WIDTHS);
    widths[(*count)++] = (int)w;
    p = *end ? end + 1 : end;
  }
  if (*count < 2) return ntk_err_set(NTK_ERR_INPUT, "sweep: --widths: give at least two widths to fit a slope");
  return NTK_OK;
}

static int parse_positive(const char *what, const char *text, int *v) {
  long long x;
  NTK_CHECK(ntk_app_parse_positive(what, text, 1000000, &x));
  *v = (int)x;
  return NTK_OK;
}

typedef struct {
  int widths[NTK_SWEEP_MAX_WIDTHS], W, S, K;
  double *dist, *eigerr, *top; /* (W, S), (W, S), (W, S, K) */
  double slope, ci_low, ci_high;
} sweep_result;

static void fit_slope(sweep_result *r) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int n = r->W * r->S;
  for (int a = 0; a < r->W; ++a)
    for (int s = 0; s < r->S; ++s) {
      double x = log((double)r->widths[a]), y = log(r->dist[a * r->S + s]);
      sx += x; sy += y; sxx += x * x; sxy += x * y;
    }
  double mx = sx / n, my = sy / n, Sxx = sxx - n * mx * mx;
  r->slope = (sxy - n * mx * my) / Sxx;
  double rss = 0.0, icpt = my - r->slope * mx;
  for (int a = 0; a < r->W; ++a)
    for (int s = 0; s < r->S; ++s) {
      double e = log(r->dist[a * r->S + s]) - icpt - r->slope * log((double)r->widths[a]);
      rss += e * e;
    }
  double se = n > 2 ? sqrt(rss / (n - 2) / Sxx) : NAN;
  double t = t975(n - 2);
  r->ci_low = r->slope - t * se;
  r->ci_high = r->slope + t * se;
}

typedef struct {
  const char *widths, *seeds, *topk; /* the options as given (NULL = absent) */
  sweep_result r;
} sweep_state;

/* The options and the configuration's sweep rules: the same outcome on every rank. */
static int sweep_check_args(ntk_app_ctx *ctx) {
  sweep_state *st = ctx->state;
  const ntk_config *cfg = &ctx->cfg;
  sweep_result *r = &st->r;
  if (!st->widths) return ntk_err_set(NTK_ERR_INPUT, "sweep: --widths W1,W2,... is required");
  NTK_CHECK(parse_widths(st->widths, r->widths, &r->W));
  r->S = 4;
  if (st->seeds) NTK_CHECK(parse_positive("sweep: --seeds", st->seeds, &r->S));
  r->K = 0; /* 0: the default, min(N, 10), once N is known */
  if (st->topk) NTK_CHECK(parse_positive("sweep: --top-k", st->topk, &r->K));
  if (!cfg->fourier.project)
    return ntk_err_set(NTK_ERR_INPUT, "sweep: fourier.project false ties the width to the features; a width study needs fourier.project true");
  NTK_CHECK(ntk_analytic_check(cfg));
  if (cfg->ntk.method == NTK_METHOD_MATRIX_FREE)
    return ntk_err_set(NTK_ERR_INPUT, "ntk.method: sweep measures ||Theta - Theta_inf||_F, which "
                       "needs the N x N kernel (allowed: structured, jacobian)");
  return NTK_OK;
}

static int sweep_body(ntk_app_ctx *ctx) {
  sweep_state *st = ctx->state;
  const ntk_config *cfg = &ctx->cfg;
  sweep_result *r = &st->r;
  ntk_grid *g = &ctx->g;
  ntk_data *D = &ctx->data;
  ntk_output *out = &ctx->out;
  int shape[4], narrowest = r->widths[0];
  for (int a = 1; a < r->W; ++a)
    if (r->widths[a] < narrowest) narrowest = r->widths[a];
  NTK_CHECK(ntk_app_data_shape(cfg, shape));
  /* one grid for every width: the narrowest must give every process column neurons */
  NTK_CHECK(ntk_app_ctx_grid(ctx, shape[0], narrowest));
  NTK_CHECK(ntk_app_ctx_data(ctx));
  const int N = D->n_train;
  if (!r->K) r->K = N < 10 ? N : 10;
  NTK_CHECK_ALL(r->K > N ? ntk_err_set(NTK_ERR_INPUT, "sweep: --top-k %d exceeds the %d samples", r->K, N) : NTK_OK);
  NTK_ALLOC(r->dist, r->W * r->S, "sweep distances");
  NTK_ALLOC(r->eigerr, r->W * r->S, "sweep eigenvalue errors");
  NTK_ALLOC(r->top, (size_t)r->W * r->S * r->K, "sweep eigenvalues");
  NTK_CHECK(ntk_app_ctx_open_output(ctx));
  ntk_log_info("sweep: %d widths x %d seeds, N = %d, top %d eigenvalues, every kernel on all %d ranks",
               r->W, r->S, N, r->K, g->size);

  /* Theta_inf depends on the network seed only through the Fourier frequencies (exact
   * kernel) and a drawn mask; otherwise one kernel serves every seed. */
  const int per_seed = (cfg->fourier.features > 0 && cfg->analytic.fourier == NTK_FOURIER_EXACT) ||
                       cfg->ntk.network == NTK_NETWORK_MASK;
  const uint64_t seed0 = cfg->seed;
  ntk_dmat tinf = {0}, theta = {0};
  double *winf, *w;
  NTK_ALLOC(winf, N, "analytic eigenvalues");
  NTK_ALLOC(w, r->K, "eigenvalues");
  NTK_CHECK(ntk_dmat_create(g, N, N, &theta));
  int err = NTK_OK;
  ntk_config c = *cfg;
  c.ntk.top_k = r->K;
  for (int s = 0; s < r->S && !err; ++s) {
    c.seed = seed0 + (uint64_t)s;
    if (s == 0 || per_seed) {
      ntk_dmat_free(&tinf);
      err = ntk_app_write_analytic(&c, g, &D->x_train, s == 0 ? out : NULL, &tinf, winf);
      if (err) break;
    }
    const double tnorm = ntk_dmat_norm_fro(&tinf);
    for (int a = 0; a < r->W && !err; ++a) {
      /* a sweep keeps nothing before its end: a signal between two points stops it */
      if ((err = ntk_signal_check(MPI_COMM_WORLD, "the sweep"))) break;
      c.model.width = r->widths[a];
      ntk_model M;
      if ((err = ntk_model_init(&c, g, D->d, D->k, &M))) break;
      err = ntk_ntk_for_config(&M, &D->x_train, 0, NULL, &theta, NULL);
      ntk_model_free(&M);
      if (err) break;
      ntk_timer_start(NTK_PHASE_EIGENSOLVE);
      err = ntk_eig_solve(c.eigensolver.type, &theta, r->K, 0, w, NULL);
      ntk_timer_stop(NTK_PHASE_EIGENSOLVE);
      if (err) break;
      double num = 0.0, den = 0.0;
      for (int i = 0; i < r->K; ++i) {
        num += (w[i] - winf[i]) * (w[i] - winf[i]);
        den += winf[i] * winf[i];
        r->top[((size_t)a * r->S + s) * r->K + i] = w[i];
      }
      r->dist[a * r->S + s] = ntk_dmat_diff_fro(&theta, &tinf) / tnorm;
      r->eigerr[a * r->S + s] = sqrt(num / den);
      ntk_log_info("  width %6d seed %3d: distance %.4e, top-%d eigenvalue error %.4e", r->widths[a],
                   (int)c.seed, r->dist[a * r->S + s], r->K, r->eigerr[a * r->S + s]);
    }
  }
  ntk_dmat_free(&tinf);
  ntk_dmat_free(&theta);
  free(winf);
  free(w);
  NTK_CHECK(err);
  fit_slope(r);

  long long dims[3] = {r->W, r->S, r->K}, wl[NTK_SWEEP_MAX_WIDTHS], sl[1024];
  double mean[NTK_SWEEP_MAX_WIDTHS], sd[NTK_SWEEP_MAX_WIDTHS];
  for (int a = 0; a < r->W; ++a) {
    wl[a] = r->widths[a];
    double m = 0, v = 0;
    for (int s = 0; s < r->S; ++s) m += r->dist[a * r->S + s] / r->S;
    for (int s = 0; s < r->S; ++s) v += pow(r->dist[a * r->S + s] - m, 2);
    mean[a] = m;
    sd[a] = r->S > 1 ? sqrt(v / (r->S - 1)) : 0.0;
  }
  int ns = r->S < 1024 ? r->S : 1024;
  for (int s = 0; s < ns; ++s) sl[s] = (long long)(seed0 + (uint64_t)s);
  NTK_CHECK(ntk_output_write_int_array(out, "/sweep/widths", r->W, wl));
  NTK_CHECK(ntk_output_write_int_array(out, "/sweep/seeds", ns, sl));
  NTK_CHECK(ntk_output_write_array(out, "/sweep/distance", 2, dims, r->dist));
  NTK_CHECK(ntk_output_write_array(out, "/sweep/eigenvalue_error", 2, dims, r->eigerr));
  NTK_CHECK(ntk_output_write_array(out, "/sweep/top_eigenvalues", 3, dims, r->top));
  NTK_CHECK(ntk_output_write_array(out, "/sweep/distance_mean", 1, dims, mean));
  NTK_CHECK(ntk_output_write_array(out, "/sweep/distance_std", 1, dims, sd));
  NTK_CHECK(ntk_output_attr_double(out, "/sweep", "slope", r->slope));
  NTK_CHECK(ntk_output_attr_double(out, "/sweep", "slope_ci_low", r->ci_low));
  NTK_CHECK(ntk_output_attr_double(out, "/sweep", "slope_ci_high", r->ci_high));
  NTK_CHECK(ntk_output_attr_int(out, "/sweep", "top_k", r->K));

  ntk_log_raw("\n%10s %14s %14s %18s\n", "width", "distance", "(std)", "eigenvalue error");
  for (int a = 0; a < r->W; ++a) {
    double e = 0;
    for (int s = 0; s < r->S; ++s) e += r->eigerr[a * r->S + s] / r->S;
    ntk_log_raw("%10d %14.6e %14.3e %18.6e\n", r->widths[a], mean[a], sd[a], e);
  }
  ntk_log_raw("\nlog-log slope of the distance against the width: %.4f (95%% CI [%.4f, %.4f]; -0.5 expected)\n",
              r->slope, r->ci_low, r->ci_high);
  return NTK_OK;
}

static void sweep_report(ntk_app_ctx *ctx) { ntk_log_raw("wrote %s\n", ctx->cfg.output.path); }

static void sweep_free(ntk_app_ctx *ctx) {
  sweep_state *st = ctx->state;
  free(st->r.dist);
  free(st->r.eigerr);
  free(st->r.top);
}

int ntk_app_sweep(int argc, char **argv) {
  static sweep_state st;
  memset(&st, 0, sizeof st);
  const ntk_app_option opts[] = {{"--widths", 1, NULL, &st.widths}, {"--seeds", 1, NULL, &st.seeds},
                                 {"--top-k", 1, NULL, &st.topk}};
  const ntk_app_command cmd = {.name = "sweep", .opts = opts, .nopts = 3,
                               .check_args = sweep_check_args, .body = sweep_body,
                               .report = sweep_report, .free_state = sweep_free};
  return ntk_app_main(&cmd, &st, argc, argv);
}
