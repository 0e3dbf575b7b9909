/* ntk_trainer: the state of a training run (the model, data and output it works on, the
 * step-0 reference, the learning rate, the measurement scratch, the schedule), shared by
 * the loop and measurement (ntk_train) and the restart file (ntk_checkpoint).  Both
 * include this header and only ntk_train includes ntk_checkpoint, so the dependency
 * points one way: train -> checkpoint -> trainer. */
#ifndef NTK_TRAINER_H
#define NTK_TRAINER_H
#include "ntk_config.h"
#include "ntk_data.h"
#include "ntk_grid.h"
#include "ntk_model.h"
#include "ntk_output.h"

/* The kernel-regime reference of one kernel (Theta_0, or Theta_inf): its K eigenvalues
 * (descending), the residual energy e_i = sum_c (u_i^T r_{0,c})^2 along each eigenvector
 * and the energy outside the K eigenvectors (0 when K == N).  With a test set, also what
 * the test-loss prediction needs (docs/METRICS.md): tb = Theta(X_test, X) U (n_test x K)
 * and tp = U^T r_0 (K x k); tb.a == NULL without them. */
typedef struct {
  int K;
  double *w, *energy;
  double rest;
  ntk_dmat tb, tp;
} ntk_kernel_ref;

typedef struct {
  const ntk_config *cfg;
  const ntk_grid *g;
  ntk_model *model;
  const ntk_data *data;
  ntk_output *out;
  int N, K, ng;
  int want_vectors; /* eigenvectors at each measurement (training runs, save_eigenvectors) */
  int matrix_free;  /* ntk.method matrix_free: no N x N kernel (theta, theta0 stay empty) */
  /* step-0 reference, kept for the whole run and stored in checkpoints */
  ntk_dmat theta0;
  double theta0_fro;
  ntk_kernel_ref ref0, refinf; /* refinf.K == 0 unless analytic.enabled */
  double lr;                   /* eta actually used */
  double loss0;                /* train loss at step 0 (evaluation network) */
  ntk_dmat test_r0;            /* f_0(X_test) - Y_test (evaluation network); a == NULL
                                * until a test-loss reference needs it */
  int unstable;                /* a measurement saw eta*lambda_max/(2N) > 1 or the loss grow */
  /* scratch of one measurement */
  ntk_dmat theta, vectors;
  double *w, *group_trace;
  /* schedule */
  long long *sched;
  int nsched;
  /* gradient buffers, one per weight shape, reused every step */
  ntk_dmat gbuf[4];
  /* timing of the training steps (this rank) */
  long long steps_done;
  double step_seconds, forward_seconds;
} ntk_trainer;

#endif
