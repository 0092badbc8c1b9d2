#pragma once

namespace ss {

// What a pure, resumable parser says about the bytes it has seen so far.
enum class ParseStatus { NeedMore, Ok, Error };

}  // namespace ss
