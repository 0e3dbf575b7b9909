/* Fuzz target: the IDX reader (Fashion-MNIST files), in memory and through zlib.
 * Properties checked for every input:
 *  - ntk_idx_parse succeeds or fails with NTK_ERR_INPUT and one line, and frees on failure;
 *  - on success the header, the size and every byte of every item match the input, and a
 *    selection of items returns exactly those items;
 *  - ntk_idx_read on the same bytes as a file (plain or gzip) agrees with the in-memory
 *    parser on plain input, and fails cleanly on corrupt gzip;
 *  - ntk_idx_read_header agrees with the parsed header. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "ntk_data.h"
#include "ntk_error.h"

static const int input_errors[] = {NTK_ERR_INPUT, 0};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

static void check_parsed(const ntk_idx *idx, const uint8_t *data, size_t size) {
  NTK_FUZZ_ASSERT(idx->ndim >= 1 && idx->ndim <= 4, "rank %d", idx->ndim);
  size_t item = 1;
  for (int k = 1; k < idx->ndim; ++k) item *= (size_t)idx->dims[k];
  NTK_FUZZ_ASSERT(item == idx->item_size, "item size %zu, dims give %zu", idx->item_size, item);
  NTK_FUZZ_ASSERT(idx->nitems == idx->dims[0], "%d items of %d", idx->nitems, idx->dims[0]);
  size_t hdr = 4 + 4 * (size_t)idx->ndim;
  NTK_FUZZ_ASSERT(size == hdr + (size_t)idx->nitems * item, "accepted %zu bytes for %d items of %zu",
                  size, idx->nitems, item);
  NTK_FUZZ_ASSERT(idx->nitems == 0 || memcmp(idx->data, data + hdr, (size_t)idx->nitems * item) == 0,
                  "items differ from the file");
}

/* Items 1, 4, 7, ... (at most 64): the selection path skips and keeps in turn. */
static void check_selection(const ntk_idx *all, const uint8_t *data, size_t size) {
  int items[64], nsel = 0;
  for (int i = 1; i < all->dims[0] && nsel < 64; i += 3) items[nsel++] = i;
  ntk_idx sel;
  ntk_err_clear();
  int rc = ntk_idx_parse(data, size, "fuzz", nsel, items, &sel);
  NTK_FUZZ_ASSERT(rc == NTK_OK, "a selection of a valid file failed: %s", ntk_err_message());
  NTK_FUZZ_ASSERT(sel.nitems == nsel, "%d items selected, %d returned", nsel, sel.nitems);
  size_t hdr = 4 + 4 * (size_t)all->ndim;
  for (int t = 0; t < nsel; ++t)
    NTK_FUZZ_ASSERT(memcmp(sel.data + (size_t)t * sel.item_size,
                           data + hdr + (size_t)items[t] * all->item_size, all->item_size) == 0,
                    "selected item %d differs", items[t]);
  ntk_idx_free(&sel);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ntk_idx idx;
  ntk_err_clear();
  int rc = ntk_idx_parse(data, size, "fuzz", 0, NULL, &idx);
  ntk_fuzz_check_rc(rc, input_errors, "ntk_idx_parse");
  if (rc) {
    NTK_FUZZ_ASSERT(idx.data == NULL, "failed parse left data allocated");
  } else {
    check_parsed(&idx, data, size);
    check_selection(&idx, data, size);
  }

  /* the same bytes as a file: zlib reads plain data transparently */
  char path[64];
  int fd = ntk_fuzz_file(data, size, path, sizeof path);
  int gzip = size >= 1 && data[0] == 0x1f;
  ntk_idx f, h;
  ntk_err_clear();
  int rcf = ntk_idx_read(path, 0, NULL, &f);
  ntk_fuzz_check_rc(rcf, input_errors, "ntk_idx_read");
  if (!gzip) {
    NTK_FUZZ_ASSERT(rcf == rc, "file read %d, memory parse %d (%s)", rcf, rc, ntk_err_message());
    if (!rc)
      NTK_FUZZ_ASSERT(f.nitems == idx.nitems && f.item_size == idx.item_size &&
                          (f.nitems == 0 || memcmp(f.data, idx.data, (size_t)f.nitems * f.item_size) == 0),
                      "file and memory parses differ");
  }
  ntk_err_clear();
  int rch = ntk_idx_read_header(path, &h);
  ntk_fuzz_check_rc(rch, input_errors, "ntk_idx_read_header");
  if (!rcf) {
    NTK_FUZZ_ASSERT(rch == NTK_OK, "header of a readable file refused: %s", ntk_err_message());
    NTK_FUZZ_ASSERT(h.ndim == f.ndim && memcmp(h.dims, f.dims, sizeof h.dims) == 0 &&
                        h.item_size == f.item_size && h.data == NULL,
                    "header differs from the full read");
  }
  close(fd);
  if (!rcf) ntk_idx_free(&f);
  if (!rc) ntk_idx_free(&idx);
  ntk_err_clear();
  return 0;
}
