/* Compiled against one layer's include path (tests/layers.cmake): including a header of
 * the layer above must fail, including the layer's own header must succeed. */
#include NTK_PROBE_HEADER
int ntk_layer_probe(void) { return 0; }
