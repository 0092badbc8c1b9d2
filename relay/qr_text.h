#pragma once
// A QR code for the terminal (ss-local --qr), made with libqrencode.

#include <string>
#include <string_view>

namespace ss {

// `text` as a QR code drawn with Unicode half blocks (two modules rows per line), dark modules
// as spaces on a light background so that it scans on dark and light terminals alike, with the
// 4-module quiet zone. "" if libqrencode cannot encode it.
std::string qr_text(std::string_view text);

}  // namespace ss
