# Settings shared by every imbench target, carried by an INTERFACE target
# instead of global flags.
add_library(imbench_settings INTERFACE)
add_library(imbench::settings ALIAS imbench_settings)
target_compile_features(imbench_settings INTERFACE cxx_std_17)
target_include_directories(imbench_settings INTERFACE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/generated)
target_compile_options(imbench_settings INTERFACE -Wall -Wextra -Wno-unused-parameter
  # as LibTorch is built: lets GCC vectorise sqrt in the fused optimiser loops
  -fno-math-errno)
if(IMBENCH_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "IMBENCH_FUZZ needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++")
  endif()
  # The library code the fuzz targets call is instrumented too: coverage for
  # libFuzzer (fuzzer-no-link; the targets link -fsanitize=fuzzer), ASan and
  # UBSan, every UBSan finding fatal.
  set(IMBENCH_SANITIZERS -fsanitize=address,undefined -fno-sanitize-recover=undefined)
  target_compile_options(imbench_settings INTERFACE ${IMBENCH_SANITIZERS} -fsanitize=fuzzer-no-link
                                                    -fno-omit-frame-pointer -g)
  target_link_options(imbench_settings INTERFACE ${IMBENCH_SANITIZERS})
endif()
if(IMBENCH_WARNINGS_AS_ERRORS)
  target_compile_options(imbench_settings INTERFACE -Werror)
endif()

# Torch consumers: one precompiled header (torch/torch.h is ~95% of the
# compile time of a translation unit) reused by every torch target.
add_library(imbench_torch INTERFACE)
target_link_libraries(imbench_torch INTERFACE imbench_settings ${TORCH_LIBRARIES})
target_compile_options(imbench_torch INTERFACE ${TORCH_CXX_FLAGS})
if(IMBENCH_OPENMP)
  # The same OpenMP runtime as Debian's LibTorch (libgomp).
  target_link_libraries(imbench_torch INTERFACE OpenMP::OpenMP_CXX)
endif()

# imbench_add_library(name folder sources... [TORCH] [DEPS ...])
function(imbench_add_library name)
  cmake_parse_arguments(ARG "TORCH" "" "SOURCES;DEPS" ${ARGN})
  add_library(imbench_${name} STATIC ${ARG_SOURCES})
  add_library(imbench::${name} ALIAS imbench_${name})
  target_link_libraries(imbench_${name} PUBLIC imbench_settings ${ARG_DEPS})
  if(ARG_TORCH)
    target_link_libraries(imbench_${name} PUBLIC imbench_torch)
    imbench_use_pch(imbench_${name})
  endif()
  if(IMBENCH_UNITY)
    set_target_properties(imbench_${name} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 0)
  endif()
endfunction()

# The first torch target compiles the PCH; the others reuse it.
function(imbench_use_pch target)
  if(NOT IMBENCH_PCH)
    return()
  endif()
  get_property(owner GLOBAL PROPERTY IMBENCH_PCH_OWNER)
  if(NOT owner)
    target_precompile_headers(${target} PRIVATE ${PROJECT_SOURCE_DIR}/core/torch_pch.h)
    set_property(GLOBAL PROPERTY IMBENCH_PCH_OWNER ${target})
  else()
    target_precompile_headers(${target} REUSE_FROM ${owner})
  endif()
endfunction()

# imbench_require_torch_free(target...): checked once everything is configured.
include(${CMAKE_CURRENT_LIST_DIR}/TorchFree.cmake)
