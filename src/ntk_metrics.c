#include "ntk_metrics.h"

#include <math.h>
#include <stdlib.h>

#include "ntk_error.h"

int ntk_metrics_kernel(const ntk_dmat *theta, const double *w, int K, const ntk_dmat *Y,
                       ntk_kernel_metrics *km) {
  const int N = theta->m;
  km->lambda_max = w[0];
  km->lambda_min = K == N ? w[K - 1] : NAN;
  km->condition_number = K == N ? w[0] / w[K - 1] : NAN;
  km->trace = ntk_dmat_trace(theta);
  km->frobenius = ntk_dmat_norm_fro(theta);
  km->effective_rank = km->trace * km->trace / (km->frobenius * km->frobenius);
  /* sum_c y_c^T Theta y_c / (||Theta||_F sum_c ||y_c||^2) */
  ntk_dmat TY;
  NTK_CHECK(ntk_dmat_create(theta->g, N, Y->n, &TY));
  NTK_CHECK(ntk_dmat_gemm('N', 'N', 1.0, theta, Y, 0.0, &TY));
  double loc[2] = {0.0, 0.0}, tot[2];
  for (int jl = 0; jl < Y->nloc; ++jl)
    for (int il = 0; il < Y->mloc; ++il) {
      double y = Y->a[il + (size_t)jl * Y->lld];
      loc[0] += y * TY.a[il + (size_t)jl * TY.lld];
      loc[1] += y * y;
    }
  MPI_Allreduce(loc, tot, 2, MPI_DOUBLE, MPI_SUM, theta->g->comm);
  km->alignment = tot[0] / (km->frobenius * tot[1]);
  ntk_dmat_free(&TY);
  return NTK_OK;
}

int ntk_metrics_loss(const ntk_dmat *f, const ntk_dmat *Y, int classification, double *loss,
                     double *accuracy) {
  double s = 0.0, tot = 0.0;
  for (int jl = 0; jl < f->nloc; ++jl)
    for (int il = 0; il < f->mloc; ++il) {
      double r = f->a[il + (size_t)jl * f->lld] - Y->a[il + (size_t)jl * Y->lld];
      s += r * r;
    }
  MPI_Allreduce(&s, &tot, 1, MPI_DOUBLE, MPI_SUM, f->g->comm);
  *loss = tot / (2.0 * f->m);
  *accuracy = NAN;
  if (!classification) return NTK_OK;
  double *fr = NULL, *yr = NULL;
  NTK_CHECK(ntk_dmat_replicate_rows(f, &fr));
  NTK_CHECK(ntk_dmat_replicate_rows(Y, &yr));
  const int k = f->n;
  double correct = 0.0, all = 0.0;
  /* every rank of a grid row holds the same rows: count them on grid column 0 only */
  if (f->g->mycol == 0)
    for (int il = 0; il < f->mloc; ++il) {
      int af = 0, ay = 0;
      for (int c = 1; c < k; ++c) {
        if (fr[(size_t)il * k + c] > fr[(size_t)il * k + af]) af = c;
        if (yr[(size_t)il * k + c] > yr[(size_t)il * k + ay]) ay = c;
      }
      correct += af == ay;
    }
  MPI_Allreduce(&correct, &all, 1, MPI_DOUBLE, MPI_SUM, f->g->comm);
  *accuracy = all / f->m;
  free(fr);
  free(yr);
  return NTK_OK;
}
