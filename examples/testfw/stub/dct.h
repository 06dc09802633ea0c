// Stub of Device OS's dct.h (application DCT access), as on a Gen 3 platform
// (Boron, B Series, Tracker): DCT_SETUP_DONE_OFFSET is 8134, one byte, 0x01 = done.
// An Electron's dct.h has no setup-done field; the example checks the macro.
#pragma once

#include <cstddef>
#include <cstdint>

// -DPARTICLE_STUB_ELECTRON checks the example's Electron branch (no such field).
#ifndef PARTICLE_STUB_ELECTRON
#define DCT_SETUP_DONE_OFFSET 8134
#define DCT_SETUP_DONE_SIZE 1
#endif

extern "C" {
int dct_read_app_data_copy(uint32_t offset, void* ptr, size_t size);
int dct_write_app_data(const void* data, uint32_t offset, uint32_t size);
}
