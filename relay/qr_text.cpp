// QR codes for ss-local --qr and the status page: libqrencode (ISO/IEC 18004) makes the symbol;
// qr_text draws it with half blocks, two module rows per text line.

#include "relay/qr_text.h"

#include <qrencode.h>

#include <string>

namespace ss {

std::optional<QrMatrix> qr_matrix(std::string_view text) {
  const std::string input(text);
  QRcode* code = QRcode_encodeString(input.c_str(), 0, QR_ECLEVEL_M, QR_MODE_8, 1);
  if (code == nullptr) return std::nullopt;
  QrMatrix m;
  m.width = code->width;
  m.dark.resize(static_cast<size_t>(m.width) * static_cast<size_t>(m.width));
  for (size_t i = 0; i < m.dark.size(); ++i) m.dark[i] = code->data[i] & 1;
  QRcode_free(code);
  return m;
}

std::string qr_text(std::string_view text) {
  const std::optional<QrMatrix> code = qr_matrix(text);
  if (!code) return "";
  const int width = code->width;
  constexpr int kQuiet = 4;
  const int size = width + 2 * kQuiet;
  auto dark = [&](int x, int y) {
    x -= kQuiet;
    y -= kQuiet;
    if (x < 0 || y < 0 || x >= width || y >= width) return false;
    return code->at(x, y);
  };
  // Light is drawn, dark is left blank: upper half block for light above, lower for light below.
  std::string out;
  for (int y = 0; y < size; y += 2) {
    for (int x = 0; x < size; ++x) {
      const bool top = !dark(x, y);
      const bool bottom = y + 1 < size ? !dark(x, y + 1) : true;
      if (top && bottom) {
        out += "\u2588";
      } else if (top) {
        out += "\u2580";
      } else if (bottom) {
        out += "\u2584";
      } else {
        out += ' ';
      }
    }
    out += '\n';
  }
  return out;
}

}  // namespace ss
