/* ntk_train: training dynamics of the NTK-ECRN (MODEL.md "Training" and "Metrics") -
 * full-batch gradient descent or minibatch SGD on the MSE loss, with the NTK measured and
 * diagonalised at the steps of a schedule, every metric appended to /trajectory, the
 * kernel-regime prediction of the train and test losses, stop on divergence, and the step-boundary
 * signal agreement that lets a run be checkpointed and resumed.
 *
 * Gradients are computed in the block-cyclic layout: the backward pass hands each
 * parameter group's (signal g, input a) to a visitor that forms wscale * g^T a with PDGEMM
 * into a matrix shaped like the weight, so no rank ever holds a whole weight or gradient.
 * A training step costs one forward and one backward pass (about three forward passes);
 * the NTK is only computed at measurement steps.  See docs/TRAINING.md. */
#ifndef NTK_TRAIN_H
#define NTK_TRAIN_H
#include "ntk_trainer.h"

/* How a run ended (also the root `status` attribute and the exit status, docs/TRAINING.md). */
typedef enum {
  NTK_TRAIN_COMPLETE = 0,    /* "complete", exit status 0 */
  NTK_TRAIN_INTERRUPTED = 1, /* "interrupted": checkpoint written, exit status 3 */
  NTK_TRAIN_DIVERGED = 2     /* "diverged": NaN/Inf or loss blow-up, exit status 4 */
} ntk_train_outcome;

#define NTK_EXIT_INTERRUPTED 3
#define NTK_EXIT_DIVERGED 4

/* Collective.  Allocates the trainer's buffers; the model, data and output stay the
 * caller's.  Nothing is computed. */
int ntk_train_init(ntk_trainer *t, const ntk_config *cfg, const ntk_grid *g, ntk_model *model,
                   const ntk_data *data, ntk_output *out);
void ntk_train_free(ntk_trainer *t);

/* Collective.  The infinite-width reference for the prediction: Theta_inf (N x N) is
 * diagonalised (all N pairs) and projected on the step-0 residual of the evaluation
 * network (computed here).  t->refinf.w then holds Theta_inf's N eigenvalues.  cross_inf
 * (may be NULL: no test-loss prediction from Theta_inf) is Theta_inf(X_test, X). */
int ntk_train_set_infinite_reference(ntk_trainer *t, const ntk_dmat *theta_inf,
                                     const ntk_dmat *cross_inf);

/* The /trajectory series ntk.method matrix_free writes as NaN (they need the whole kernel;
 * docs/METRICS.md), as the root attribute `not_computed` lists them; with Hutchinson
 * probes (eigensolver.frobenius_probes) the ESTIMATED ones are estimates instead (root
 * attribute `estimated`). */
#define NTK_MATRIX_FREE_ESTIMATED "frobenius_norm, kernel_target_alignment, effective_rank"
#define NTK_MATRIX_FREE_NOT_COMPUTED_ALWAYS \
  "lambda_min, condition_number, drift, ntk_change_norm2, weyl_ok"
#define NTK_MATRIX_FREE_NOT_COMPUTED \
  NTK_MATRIX_FREE_NOT_COMPUTED_ALWAYS ", " NTK_MATRIX_FREE_ESTIMATED

/* Collective.  One measurement at `step`: Theta_t, its spectrum, every metric of MODEL.md,
 * appended to /trajectory and flushed.  Step 0 also fixes the reference (Theta_0, its
 * eigendecomposition, r_0's projections, the learning rate).  *diverged is set when the
 * kernel or the loss is not finite (the row is still written). */
int ntk_train_measure(ntk_trainer *t, long long step, int *diverged);

/* Collective.  One optimisation step from `step` to step + 1 (the mask and minibatch of
 * `step`); *loss is the full train loss of the training network before the update (the
 * one the gradient belongs to, on the whole training set also for sgd). */
int ntk_train_step(ntk_trainer *t, long long step, double *loss);

/* Collective.  The training loop from `start` (0, or a checkpoint's step) to train.steps:
 * measures at the scheduled steps (the measurement of `start` is skipped when
 * start_measured), stops at a signal (checkpoint written) or on divergence.  stop_at > 0
 * stops at that step boundary as a signal would (checkpoint written, NTK_TRAIN_INTERRUPTED):
 * the same point on every run, where a signal's point depends on timing. */
int ntk_train_run(ntk_trainer *t, long long start, int start_measured, long long stop_at,
                  ntk_train_outcome *outcome, long long *last_step);

/* The measurement steps of a config, ascending, without repeats, always with 0 and
 * train.steps (malloc'd; not collective).  NTK_ERR_INPUT, before anything is allocated,
 * when there would be more than INT_MAX of them. */
int ntk_train_schedule(const ntk_config *cfg, long long **steps, int *n);
/* How many measurements the schedule makes, without making it: exact for measure every,
 * at most train.measure_points + 2 (log) or the list's length + 2 (list), never more than
 * train.steps + 1 (repeats merge).  Saturating; NTK_ERR_INPUT with a one-line message when
 * it exceeds INT_MAX (*count is still set). */
int ntk_train_schedule_count(const ntk_config *cfg, int64_t *count);

/* Memory the trainer holds for the whole run, for the estimate (ntk_memory), in bytes on
 * process (0, 0); saturating.  N samples, d inputs, k outputs. */
typedef struct {
  int64_t kernel;   /* the measured N x N kernel */
  int64_t vectors;  /* the eigenvectors of the last measurement (N x K), when wanted */
  int64_t theta0;   /* training: Theta_0, the drift's reference */
  int64_t grads;    /* training: one gradient buffer per weight shape */
  int64_t schedule; /* the measurement steps, on every rank */
} ntk_train_bytes;
void ntk_train_memory(const ntk_config *cfg, const ntk_grid *g, int N, int d, int k,
                      ntk_train_bytes *b);

/* The test-loss prediction's reference kept for the whole run (training with a test set):
 * f_0(X_test) - Y_test and, per reference kernel, Theta(X_test, X) U and U^T r_0; bytes on
 * process (0, 0), saturating. */
int64_t ntk_train_test_memory(const ntk_config *cfg, const ntk_grid *g, int N, int n_test,
                              int k);

/* Kernel-regime train loss at step t of GD with learning rate lr on N samples:
 * (1/2N) [sum_i (1 - lr w_i / N)^(2t) e_i + rest]. */
double ntk_train_predict_loss(const ntk_kernel_ref *ref, double lr, int N, long long t);


/* Collective, for --resume (the checkpoint read, the output reopened): keep the
 * trajectory rows of steps <= start and drop later ones (a run killed after its last
 * checkpoint measured further); *start_measured says whether step `start` has its row. */
int ntk_train_resume_output(ntk_trainer *t, long long start, int *start_measured);

#endif
