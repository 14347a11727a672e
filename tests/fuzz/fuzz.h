/* fuzz.h - the libFuzzer entry point every target in tests/fuzz defines (replay.c calls
 * it in builds without libFuzzer). */
#ifndef RSSP_FUZZ_H
#define RSSP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
