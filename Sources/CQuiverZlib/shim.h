// The system zlib (RFC 1950/1951), for TLS certificate compression (RFC 8879).
#include <zlib.h>
