// stb_image and stb_image_write, compiled alone in this file (the rest of augment/ only includes their
// declarations), so that build settings for stb itself stay off the project's code.
//
// The one such setting: sanitizer builds compile this file without UBSan's shift-exponent check
// (cmake/Sanitizers.cmake; gcc cannot drop that check alone, so with gcc both shift checks are off here).
// Debian's stb_image 2.27 shifts its JPEG bit buffer by 32 or more when a marker cuts a scan short
// (stbi__grow_buffer_unsafe, after the fast-AC path took more bits than it held: upstream nothings/stb#1293,
// fixed in 2.28). fuzz_image found it. The shift only fills stb's bit buffer (x86 masks the count: wrong bits,
// so wrong pixels or stb's own "corrupt JPEG" error); ASan still checks every access in this file.
// FuzzRegressions.StbJpegScanCutShortByAMarkerEndsCleanly keeps that input. Every other check stays on here.
#if defined(PNEUMO_HAVE_STB) && PNEUMO_HAVE_STB
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#if __has_include(<stb/stb_image.h>)
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#else
#include <stb_image.h>
#include <stb_image_write.h>
#endif
#endif
