// Catch2's main() and the rest of its implementation (catch.hpp with CATCH_CONFIG_MAIN).
//
// GCC 12 reports false -Wmaybe-uninitialized positives inside libstdc++'s <regex>, which
// Catch2's implementation uses, when optimizing with -fsanitize=address (SS_SANITIZE=ON, where
// SS_WERROR=ON made them errors). The code is not ours and the warning is a known GCC 12 false
// positive there, so it is silenced for this translation unit only, and only for GCC; clang does
// not have the warning.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
