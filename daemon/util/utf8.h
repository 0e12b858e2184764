// Making text safe for D-Bus: an 's' value must be valid UTF-8 (sd-bus refuses anything else
// with -EINVAL, and then the whole reply cannot be built). Text that can carry bytes from
// outside (file names, file contents such as YAML keys, error messages quoting them) goes
// through ValidUtf8 before it is appended.
#pragma once

#include <string>
#include <string_view>

namespace blocksnap {

// True when s is UTF-8 that sd-bus accepts: no overlong forms, no surrogates, nothing above
// U+10FFFF, none of the noncharacters U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF, and no NUL.
bool IsValidUtf8(std::string_view s);

// s with every byte that is not part of such a character written as "\xNN" (lower-case hex),
// so a file name like "caf\xe9.yaml" stays recognisable. Valid text is returned unchanged.
std::string ValidUtf8(std::string_view s);

}  // namespace blocksnap
