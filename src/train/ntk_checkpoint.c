#include "ntk_checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ntk_error.h"
#include "ntk_input.h"
#include "ntk_log.h"


void ntk_checkpoint_path(const ntk_config *cfg, char *buf, size_t n) {
  if (cfg->train.checkpoint[0])
    snprintf(buf, n, "%s", cfg->train.checkpoint);
  else
    snprintf(buf, n, "%s.ckpt", cfg->output.path);
}

/* ------------------------------------------------------------------- write -- */

int ntk_checkpoint_write_params(ntk_output *o, const ntk_model *M, const char *pre) {
  char name[256];
  long long dims[2];
  if (M->has_fourier) {
    snprintf(name, sizeof name, "%s/G", pre);
    NTK_CHECK(ntk_output_write_dmat(o, name, &M->G));
  }
  if (M->project) {
    snprintf(name, sizeof name, "%s/W0", pre);
    NTK_CHECK(ntk_output_write_dmat(o, name, &M->W0));
    snprintf(name, sizeof name, "%s/b0", pre);
    dims[0] = M->n;
    NTK_CHECK(ntk_output_write_array(o, name, 1, dims, M->b0));
  }
  snprintf(name, sizeof name, "%s/W", pre);
  for (int l = 0; l < M->L; ++l) NTK_CHECK(ntk_output_write_dmat_slice(o, name, M->L, l, &M->W[l]));
  if (M->L > 0) {
    snprintf(name, sizeof name, "%s/b", pre);
    dims[0] = M->L;
    dims[1] = M->n;
    NTK_CHECK(ntk_output_write_array(o, name, 2, dims, M->b));
  }
  snprintf(name, sizeof name, "%s/V", pre);
  NTK_CHECK(ntk_output_write_dmat(o, name, &M->V));
  snprintf(name, sizeof name, "%s/b_out", pre);
  dims[0] = M->k;
  NTK_CHECK(ntk_output_write_array(o, name, 1, dims, M->b_out));
  return NTK_OK;
}

static int write_ref(ntk_output *o, const char *pre, const char *kname, const ntk_kernel_ref *r) {
  char name[64];
  long long dims[1] = {r->K};
  NTK_CHECK(ntk_output_attr_int(o, "/", kname, r->K));
  if (r->K == 0) return NTK_OK;
  snprintf(name, sizeof name, "%s/eigenvalues", pre);
  NTK_CHECK(ntk_output_write_array(o, name, 1, dims, r->w));
  snprintf(name, sizeof name, "%s/energy", pre);
  NTK_CHECK(ntk_output_write_array(o, name, 1, dims, r->energy));
  NTK_CHECK(ntk_output_attr_double(o, pre, "rest", r->rest));
  /* the test-loss prediction's reference: it needs the initial parameters, gone by now */
  NTK_CHECK(ntk_output_attr_int(o, pre, "test", r->tb.a != NULL));
  if (!r->tb.a) return NTK_OK;
  snprintf(name, sizeof name, "%s/test_b", pre);
  NTK_CHECK(ntk_output_write_dmat(o, name, &r->tb));
  snprintf(name, sizeof name, "%s/test_p", pre);
  NTK_CHECK(ntk_output_write_dmat(o, name, &r->tp));
  return NTK_OK;
}

static int write_body(ntk_output *o, const ntk_trainer *t, long long step) {
  char *yaml = ntk_config_to_yaml(t->cfg);
  if (!yaml) return ntk_err_code();
  int err = ntk_output_attr_string(o, "/", NTK_ATTR_CONFIG, yaml);
  free(yaml);
  NTK_CHECK(err);
  NTK_CHECK(ntk_output_attr_string(o, "/", NTK_ATTR_KIND, NTK_KIND_CHECKPOINT));
  NTK_CHECK(ntk_output_attr_int(o, "/", NTK_ATTR_STEP, step));
  NTK_CHECK(ntk_output_attr_int(o, "/", "mpi_size", t->g->size));
  NTK_CHECK(ntk_output_attr_int(o, "/", "n_train", t->N));
  NTK_CHECK(ntk_output_attr_double(o, "/", "learning_rate", t->lr));
  NTK_CHECK(ntk_output_attr_double(o, "/", "loss0", t->loss0));
  NTK_CHECK(ntk_output_attr_double(o, "/", "theta0_frobenius", t->theta0_fro));
  NTK_CHECK(ntk_output_attr_int(o, "/", "unstable", t->unstable));
  NTK_CHECK(ntk_checkpoint_write_params(o, t->model, "/params"));
  /* ntk.method matrix_free has no Theta_0 (its drift is not computed) */
  if (t->theta0.a) NTK_CHECK(ntk_output_write_dmat(o, "/theta0", &t->theta0));
  if (t->test_r0.a) NTK_CHECK(ntk_output_write_dmat(o, "/test_r0", &t->test_r0));
  NTK_CHECK(write_ref(o, "/ref0", "K", &t->ref0));
  NTK_CHECK(write_ref(o, "/refinf", "Kinf", &t->refinf));
  return NTK_OK;
}

int ntk_checkpoint_write(const ntk_trainer *t, long long step) {
  char path[NTK_PATH_MAX + 16], tmp[NTK_PATH_MAX + 32];
  ntk_checkpoint_path(t->cfg, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.new", path);
  ntk_output o;
  memset(&o, 0, sizeof o);
  o.file = -1;
  int err = ntk_output_open(&o, t->g, tmp, 1);
  if (!err) err = write_body(&o, t, step);
  int cerr = ntk_output_close(&o, err ? NTK_STATUS_FAILED : NTK_STATUS_COMPLETE);
  if (err || cerr) {
    /* e.g. the disk filled up: the old checkpoint stays as it was, and the half-written
     * new one goes, since it is useless and holds the space a retry would need */
    if (t->g->rank == 0) {
      char part[NTK_PATH_MAX + 48];
      snprintf(part, sizeof part, "%s.partial", tmp);
      unlink(part);
      if (o.partial[0]) unlink(o.partial); /* CKPT.new.partial.new, if it failed that early */
      unlink(tmp);
    }
    NTK_CHECK(err ? err : cerr);
  }
  /* the old checkpoint is replaced only by a complete new one */
  int rc = NTK_OK;
  if (t->g->rank == 0 && rename(tmp, path) != 0)
    rc = ntk_err_set(NTK_ERR_RUNTIME, "checkpoint: cannot rename %s to %s (%s)", tmp, path,
                     strerror(errno));
  NTK_CHECK(ntk_err_sync(t->g->comm, rc));
  ntk_log_info("checkpoint at step %lld: %s", step, path);
  return NTK_OK;
}

/* -------------------------------------------------------------------- read -- */

/* n_test and k: the shapes of the test-loss reference, when the checkpoint has one. */
static int read_ref(ntk_input *f, const ntk_grid *g, const char *path, const char *pre,
                    const char *kname, int N, int n_test, int k, ntk_kernel_ref *r) {
  long long K = 0, test = 0;
  char name[64];
  NTK_CHECK(ntk_input_attr_int(f, "/", kname, &K));
  free(r->w);
  free(r->energy);
  ntk_dmat_free(&r->tb);
  ntk_dmat_free(&r->tp);
  memset(r, 0, sizeof *r);
  if (K == 0) return NTK_OK;
  if (K < 0 || K > N) return ntk_err_set(NTK_ERR_INPUT, "checkpoint %s: bad %s", path, kname);
  r->K = (int)K;
  NTK_ALLOC(r->w, K, "reference eigenvalues");
  NTK_ALLOC(r->energy, K, "reference projections");
  snprintf(name, sizeof name, "%s/eigenvalues", pre);
  NTK_CHECK(ntk_input_read_array(f, name, K, r->w));
  snprintf(name, sizeof name, "%s/energy", pre);
  NTK_CHECK(ntk_input_read_array(f, name, K, r->energy));
  NTK_CHECK(ntk_input_attr_double(f, pre, "rest", &r->rest));
  NTK_CHECK(ntk_input_attr_int(f, pre, "test", &test));
  if (!test) return NTK_OK;
  if (n_test == 0)
    return ntk_err_set(NTK_ERR_INPUT, "checkpoint %s: %s has a test reference, the data no test set",
                       path, pre);
  NTK_CHECK(ntk_dmat_create(g, n_test, (int)K, &r->tb));
  NTK_CHECK(ntk_dmat_create(g, (int)K, k, &r->tp));
  snprintf(name, sizeof name, "%s/test_b", pre);
  NTK_CHECK(ntk_input_read_dmat(f, name, -1, &r->tb));
  snprintf(name, sizeof name, "%s/test_p", pre);
  NTK_CHECK(ntk_input_read_dmat(f, name, -1, &r->tp));
  return NTK_OK;
}

/* Everything after the file is open; each call is made by every rank in the same order,
 * as the collective metadata mode needs. */
static int read_body(ntk_input *f, const char *path, ntk_trainer *t, long long *step) {
  ntk_model *M = t->model;
  char *kind = NULL, *saved = NULL;
  int rc = ntk_input_attr_string(f, NTK_ATTR_KIND, &kind);
  if (!rc && strcmp(kind, NTK_KIND_CHECKPOINT) != 0)
    rc = ntk_err_set(NTK_ERR_INPUT, "checkpoint %s: not an ntkspec checkpoint (kind '%s')", path,
                     kind);
  free(kind);
  if (!rc) rc = ntk_input_attr_string(f, NTK_ATTR_CONFIG, &saved);
  if (!rc) {
    char diff[2400], label[NTK_PATH_MAX + 64];
    int differs = 0;
    snprintf(label, sizeof label, "checkpoint %s: config", path);
    rc = ntk_checkpoint_config_diff(saved, label, t->cfg, diff, sizeof diff, &differs);
    if (!rc && differs)
      rc = ntk_err_set(NTK_ERR_INPUT,
                       "--resume: checkpoint %s was written for another configuration (%s); only "
                       "output.*, grid.*, memory.*, verbosity, train.steps, "
                       "train.checkpoint_every and train.checkpoint may change",
                       path, diff);
  }
  free(saved);
  NTK_CHECK(rc);
  long long unstable = 0, n_train = 0;
  NTK_CHECK(ntk_input_attr_int(f, "/", NTK_ATTR_STEP, step));
  NTK_CHECK(ntk_input_attr_int(f, "/", "n_train", &n_train));
  if (n_train != t->N)
    return ntk_err_set(NTK_ERR_INPUT, "checkpoint %s: %lld training samples, the data has %d", path,
                       n_train, t->N);
  if (*step < 0 || *step > t->cfg->train.steps)
    return ntk_err_set(NTK_ERR_INPUT,
                       "--resume: checkpoint %s is at step %lld, beyond train.steps = %d", path,
                       *step, t->cfg->train.steps);
  NTK_CHECK(ntk_input_attr_double(f, "/", "learning_rate", &t->lr));
  NTK_CHECK(ntk_input_attr_double(f, "/", "loss0", &t->loss0));
  NTK_CHECK(ntk_input_attr_double(f, "/", "theta0_frobenius", &t->theta0_fro));
  NTK_CHECK(ntk_input_attr_int(f, "/", "unstable", &unstable));
  t->unstable = (int)unstable;
  if (M->has_fourier) NTK_CHECK(ntk_input_read_dmat(f, "/params/G", -1, &M->G));
  if (M->project) {
    NTK_CHECK(ntk_input_read_dmat(f, "/params/W0", -1, &M->W0));
    NTK_CHECK(ntk_input_read_array(f, "/params/b0", M->n, M->b0));
  }
  for (int l = 0; l < M->L; ++l) NTK_CHECK(ntk_input_read_dmat(f, "/params/W", l, &M->W[l]));
  if (M->L > 0) NTK_CHECK(ntk_input_read_array(f, "/params/b", (long long)M->L * M->n, M->b));
  NTK_CHECK(ntk_input_read_dmat(f, "/params/V", -1, &M->V));
  NTK_CHECK(ntk_input_read_array(f, "/params/b_out", M->k, M->b_out));
  ntk_dmat_free(&t->theta0);
  if (t->cfg->ntk.method != NTK_METHOD_MATRIX_FREE) {
    NTK_CHECK(ntk_dmat_create(t->g, t->N, t->N, &t->theta0));
    NTK_CHECK(ntk_input_read_dmat(f, "/theta0", -1, &t->theta0));
  }
  const int n_test = t->data->n_test, k = t->model->k;
  NTK_CHECK(read_ref(f, t->g, path, "/ref0", "K", t->N, n_test, k, &t->ref0));
  NTK_CHECK(read_ref(f, t->g, path, "/refinf", "Kinf", t->N, n_test, k, &t->refinf));
  ntk_dmat_free(&t->test_r0);
  if (t->ref0.tb.a || t->refinf.tb.a) {
    NTK_CHECK(ntk_dmat_create(t->g, n_test, k, &t->test_r0));
    NTK_CHECK(ntk_input_read_dmat(f, "/test_r0", -1, &t->test_r0));
  }
  if (t->ref0.K != t->K)
    return ntk_err_set(NTK_ERR_INPUT, "checkpoint %s: %d reference eigenvalues, ntk.top_k asks for %d",
                       path, t->ref0.K, t->K);
  return NTK_OK;
}

/* Rank 0: the stored configuration of PATH.partial against the current one. */
static int partial_matches(const ntk_trainer *t, const char *partial) {
  char label[NTK_PATH_MAX + 64];
  snprintf(label, sizeof label, "--resume: %s", partial);
  ntk_input f;
  NTK_CHECK(ntk_input_open(&f, MPI_COMM_SELF, partial, label));
  char *saved = NULL;
  int rc = ntk_input_attr_string(&f, NTK_ATTR_CONFIG, &saved);
  ntk_input_close(&f);
  char diff[2400];
  int differs = 0;
  snprintf(label, sizeof label, "%s: config", partial);
  if (!rc) rc = ntk_checkpoint_config_diff(saved, label, t->cfg, diff, sizeof diff, &differs);
  if (!rc && differs)
    rc = ntk_err_set(NTK_ERR_INPUT, "--resume: no checkpoint, and %s was written for another configuration (%s)",
                     partial, diff);
  free(saved);
  return rc;
}

int ntk_checkpoint_restart_check(const ntk_trainer *t, int *restart) {
  char path[NTK_PATH_MAX + 16], partial[NTK_PATH_MAX + 16];
  ntk_checkpoint_path(t->cfg, path, sizeof path);
  snprintf(partial, sizeof partial, "%s.partial", t->cfg->output.path);
  int rc = NTK_OK, r = 0;
  if (t->g->rank == 0 && access(path, F_OK) != 0) {
    if (access(partial, F_OK) != 0)
      rc = ntk_err_set(NTK_ERR_INPUT,
                       "--resume: no checkpoint %s and no %s: nothing was kept, run without --resume "
                       "(a run writes a checkpoint on SIGTERM/SIGINT/SIGUSR1 or every "
                       "train.checkpoint_every steps)",
                       path, partial);
    else if ((rc = partial_matches(t, partial)) == NTK_OK)
      r = 1;
  }
  NTK_CHECK(ntk_err_share0(t->g->comm, rc));
  MPI_Bcast(&r, 1, MPI_INT, 0, t->g->comm);
  *restart = r;
  return NTK_OK;
}

int ntk_checkpoint_read(ntk_trainer *t, long long *step) {
  char path[NTK_PATH_MAX + 16];
  ntk_checkpoint_path(t->cfg, path, sizeof path);
  int rc = NTK_OK;
  if (t->g->rank == 0 && access(path, R_OK) != 0)
    rc = ntk_err_set(NTK_ERR_INPUT,
                     "--resume: no checkpoint %s (a run writes one on SIGTERM/SIGINT/SIGUSR1 or every "
                     "train.checkpoint_every steps)",
                     path);
  NTK_CHECK(ntk_err_share0(t->g->comm, rc));
  char label[NTK_PATH_MAX + 32];
  snprintf(label, sizeof label, "checkpoint %s", path);
  ntk_input f;
  NTK_CHECK(ntk_input_open(&f, t->g->comm, path, label));
  rc = read_body(&f, path, t, step);
  ntk_input_close(&f);
  NTK_CHECK(ntk_err_sync(t->g->comm, rc));
  return NTK_OK;
}

/* ------------------------------------------------------------ config check -- */

static int exempt(const char *key) {
  return !strncmp(key, "output.", 7) || !strncmp(key, "grid.", 5) || !strcmp(key, "verbosity") ||
         !strcmp(key, "train.steps") || !strcmp(key, "train.checkpoint_every") ||
         !strcmp(key, "train.checkpoint") || !strncmp(key, "memory.", 7);
}

int ntk_checkpoint_config_diff(const char *saved_yaml, const char *label,
                               const ntk_config *current, char *buf, size_t n, int *differs) {
  static ntk_config saved; /* static: the struct is large, and this is not reentrant anyway */
  unsigned char given[NTK_CONFIG_MAX_KEYS];
  *differs = 0;
  buf[0] = '\0';
  NTK_CHECK(ntk_config_from_text(saved_yaml, label, &saved, given));
  char v1[2 * NTK_PATH_MAX], v2[2 * NTK_PATH_MAX];
  /* every differing key, so that one refused resume shows all that changed */
  for (int i = 0; i < ntk_config_nkeys; ++i) {
    const ntk_config_key *k = &ntk_config_keys[i];
    if (exempt(k->name)) continue;
    size_t used = strlen(buf);
    const char *sep = *differs ? "; " : "";
    if (!given[i]) {
      snprintf(buf + used, n - used, "%s%s is not in the checkpoint", sep, k->name);
      ++*differs;
      continue;
    }
    ntk_config_value_text(current, k, v1, sizeof v1);
    ntk_config_value_text(&saved, k, v2, sizeof v2);
    if (strcmp(v1, v2) != 0) {
      snprintf(buf + used, n - used, "%s%s: %.200s in the checkpoint, %.200s now", sep, k->name, v2,
               v1);
      ++*differs;
    }
  }
  return NTK_OK;
}
