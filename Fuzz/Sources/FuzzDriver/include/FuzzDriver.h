#ifndef QUIVER_FUZZ_DRIVER_H
#define QUIVER_FUZZ_DRIVER_H
#include <stddef.h>
#include <stdint.h>

/// libFuzzer's entry point for programs that have their own main (compiler-rt
/// FuzzerInterface.h). Provided by libclang_rt.fuzzer when linking with -sanitize=fuzzer.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
