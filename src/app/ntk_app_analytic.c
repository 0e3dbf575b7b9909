/* `ntkspec analytic CONFIG`: the infinite-width kernels of the configuration alone. */
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
#include "ntk_model.h"
#include "ntk_timer.h"

/* The mask of the network the empirical kernel is measured on at step 0 (ntk.network
 * mask; unused otherwise), malloc'd. */
static double *measured_mask(const ntk_config *cfg) {
  const int L = cfg->model.depth;
  double *xi = ntk_calloc(L > 0 ? L : 1, sizeof(double), "mask");
  if (xi && cfg->ntk.network == NTK_NETWORK_MASK) ntk_mask_measured(cfg, 0, xi);
  return xi;
}

int ntk_app_analytic_cross(const ntk_config *cfg, const ntk_grid *g, const ntk_dmat *Xl,
                           const ntk_dmat *X, ntk_dmat *cross) {
  double *xi = measured_mask(cfg);
  if (!xi) return ntk_err_code();
  int err = ntk_analytic_cross(cfg, g, Xl, X, cfg->ntk.network, xi, cross);
  free(xi);
  NTK_CHECK(err);
  return NTK_OK;
}

int ntk_app_write_analytic(const ntk_config *cfg, const ntk_grid *g, const ntk_dmat *X,
                           ntk_output *out, ntk_dmat *theta_inf, double *w_inf) {
  const int N = X->m;
  const int K = cfg->ntk.top_k > 0 ? cfg->ntk.top_k : N;
  double *xi, *w;
  if (!(xi = measured_mask(cfg))) return ntk_err_code();
  NTK_ALLOC(w, K, "analytic eigenvalues");
  ntk_dmat nngp = {0}, ntk = {0};
  ntk_analytic_info info = {0};
  int err;
  ntk_timer_start(NTK_PHASE_ANALYTIC);
  err = ntk_analytic_compute(cfg, g, X, cfg->ntk.network, xi, &nngp, &ntk, &info);
  ntk_timer_stop(NTK_PHASE_ANALYTIC);
  const int n_masks = info.n_masks;
  if (!err) {
    char acc[96];
    if (info.closed_form)
      snprintf(acc, sizeof acc, "closed-form duals");
    else if (isnan(info.dual_error))
      snprintf(acc, sizeof acc, "fixed Gauss-Hermite order %d, error not estimated",
               cfg->analytic.quadrature_order);
    else
      snprintf(acc, sizeof acc, "dual expectations to %.1e (estimated, relative)",
               info.dual_error);
    ntk_log_info("analytic: infinite-width kernel (%s Fourier kernel, %d mask%s; %s)",
                 ntk_config_enum_name("analytic.fourier", cfg->analytic.fourier), n_masks,
                 n_masks == 1 ? "" : "s", acc);
    ntk_timer_start(NTK_PHASE_EIGENSOLVE);
    err = ntk_eig_solve(cfg->eigensolver.type, &ntk, K, 0, w, NULL);
    ntk_timer_stop(NTK_PHASE_EIGENSOLVE);
  }
  if (!err && out) {
    long long dims[1] = {K};
    ntk_timer_start(NTK_PHASE_OUTPUT);
    err = ntk_output_write_dmat(out, "/analytic/nngp", &nngp);
    if (!err) err = ntk_output_write_dmat(out, "/analytic/ntk", &ntk);
    if (!err) err = ntk_output_write_array(out, "/analytic/eigenvalues", 1, dims, w);
    if (!err) err = ntk_output_attr_int(out, "/analytic", "n_masks", n_masks);
    if (!err) err = ntk_output_attr_double(out, "/analytic", "dual_error", info.dual_error);
    if (!err)
      err = ntk_output_attr_string(out, "/analytic", "fourier",
                                   ntk_config_enum_name("analytic.fourier", cfg->analytic.fourier));
    ntk_timer_stop(NTK_PHASE_OUTPUT);
  }
  if (!err && w_inf) memcpy(w_inf, w, (size_t)K * sizeof(double));
  ntk_dmat_free(&nngp);
  if (!err && theta_inf)
    *theta_inf = ntk;
  else
    ntk_dmat_free(&ntk);
  free(xi);
  free(w);
  if (err) ntk_err_trace(__FILE__, __LINE__, __func__);
  return err;
}

static int analytic_body(ntk_app_ctx *ctx) {
  const ntk_config *cfg = &ctx->cfg;
  NTK_CHECK(ntk_err_sync(MPI_COMM_WORLD, ntk_analytic_check(cfg)));
  int shape[4];
  NTK_CHECK(ntk_app_data_shape(cfg, shape));
  /* the kernels are N x N: samples along both grid dimensions */
  NTK_CHECK(ntk_app_ctx_grid(ctx, shape[0], shape[0]));
  NTK_CHECK(ntk_app_ctx_data(ctx));
  ntk_data *D = &ctx->data;
  ntk_log_info("data: %s (N = %d, d = %d)", D->description, D->n_train, D->d);
  NTK_CHECK(ntk_app_ctx_open_output(ctx));
  if (cfg->output.save_data) {
    NTK_CHECK(ntk_output_write_dmat(&ctx->out, "/data/x_train", &D->x_train));
    NTK_CHECK(ntk_output_write_dmat(&ctx->out, "/data/y_train", &D->y_train));
  }
  NTK_CHECK(ntk_app_write_analytic(cfg, &ctx->g, &D->x_train, &ctx->out, NULL, NULL));
  return NTK_OK;
}

static void analytic_report(ntk_app_ctx *ctx) {
  ntk_timer_report(MPI_COMM_WORLD);
  ntk_log_raw("\nwrote %s\n", ctx->cfg.output.path);
}

int ntk_app_analytic(int argc, char **argv) {
  static const ntk_app_command cmd = {.name = "analytic", .body = analytic_body,
                                      .report = analytic_report};
  return ntk_app_main(&cmd, NULL, argc, argv);
}
