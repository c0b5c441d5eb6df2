// The system Brotli (RFC 7932), for TLS certificate compression (RFC 8879).
#include <brotli/decode.h>
#include <brotli/encode.h>
