#pragma once
// A QR code for the terminal (ss-local --qr), made with libqrencode.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ss {

// The modules of `text`'s QR code (libqrencode, error correction level M, 8-bit mode), row by
// row, 1 for dark, without the quiet zone; nullopt if it cannot be encoded.
struct QrMatrix {
  int width = 0;
  std::vector<uint8_t> dark;  // width * width
  bool at(int x, int y) const { return dark[static_cast<size_t>(y * width + x)] != 0; }
};
std::optional<QrMatrix> qr_matrix(std::string_view text);

// `text` as a QR code drawn with Unicode half blocks (two modules rows per line), dark modules
// as spaces on a light background so that it scans on dark and light terminals alike, with the
// 4-module quiet zone. "" if libqrencode cannot encode it.
std::string qr_text(std::string_view text);

}  // namespace ss
