/* ntk_checkpoint: the restart file of a training run.  Written collectively with the
 * parallel output module (every rank writes its own blocks of the weights and of Theta_0)
 * into CKPT.new.partial, closed, and renamed over CKPT only when complete, so a run killed
 * while checkpointing keeps the previous checkpoint; a write that fails (e.g. a full disk)
 * removes CKPT.new.partial and also keeps it.  It holds the parameters, the step,
 * the effective configuration, and what the metrics and the prediction need of step 0
 * (Theta_0, its eigenvalues, the residual projections, eta, the initial loss).  Masks and
 * minibatches come from the counter-based generator: the step is all they need.
 *
 * Reading is collective too: each rank reads only its own blocks (hyperslab selections of
 * the block-cyclic layout), so a checkpoint written on P ranks resumes on any Q. */
#ifndef NTK_CHECKPOINT_H
#define NTK_CHECKPOINT_H
#include "ntk_trainer.h"

/* The checkpoint path of a config (train.checkpoint, or output.path + ".ckpt"). */
void ntk_checkpoint_path(const ntk_config *cfg, char *buf, size_t n);

/* Collective: the model's parameters under group `pre` with MODEL.md's names (G, W0, b0,
 * W (L, n, n), b (L, n), V, b_out); used for checkpoints and /params/step_<t>. */
int ntk_checkpoint_write_params(ntk_output *o, const ntk_model *M, const char *pre);

/* Collective: write the trainer's state at `step` (the parameters after `step` updates). */
int ntk_checkpoint_write(const ntk_trainer *t, long long step);

/* Collective: restore the trainer (model parameters, step-0 reference, eta, flags) from the
 * checkpoint of its config.  Refuses (NTK_ERR_INPUT) a missing file, a file that is not an
 * ntkspec checkpoint, and one written for another configuration: every key must agree
 * except output.*, grid.*, verbosity, train.steps, train.checkpoint_every and
 * train.checkpoint (the message names the first key that differs). */
int ntk_checkpoint_read(ntk_trainer *t, long long *step);

/* Collective, for --resume: *restart = 0 when the checkpoint exists (resume from it);
 * *restart = 1 when there is none but PATH.partial of the same configuration is there: the
 * run was stopped (a signal, a kill) before its first checkpoint, and since step 0's
 * parameters come from the seed, starting again from step 0 continues it exactly.
 * Otherwise NTK_ERR_INPUT: nothing to resume. */
int ntk_checkpoint_restart_check(const ntk_trainer *t, int *restart);

/* Not collective: every key (other than the exempt ones above) whose value differs between
 * a stored configuration text (read by ntk_config_from_text; label names it in errors) and
 * `current`, as "KEY: A in the checkpoint, B now; ..." into buf; *differs counts them.
 * Fails only when the text cannot be read as a configuration. */
int ntk_checkpoint_config_diff(const char *saved_yaml, const char *label,
                               const ntk_config *current, char *buf, size_t n, int *differs);

#endif
