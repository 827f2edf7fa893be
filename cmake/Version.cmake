# Version and git revision, recorded in checkpoints and result files.
execute_process(COMMAND git -C ${PROJECT_SOURCE_DIR} rev-parse --short=12 HEAD
                OUTPUT_VARIABLE IMBENCH_GIT_REVISION OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET RESULT_VARIABLE git_rc)
if(NOT git_rc EQUAL 0 OR NOT IMBENCH_GIT_REVISION)
  set(IMBENCH_GIT_REVISION "unknown")
else()
  execute_process(COMMAND git -C ${PROJECT_SOURCE_DIR} status --porcelain --untracked-files=no
                  OUTPUT_VARIABLE git_dirty OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(git_dirty)
    string(APPEND IMBENCH_GIT_REVISION "-dirty")
  endif()
endif()
# Re-run configure when HEAD moves so the recorded revision stays right.
if(EXISTS ${PROJECT_SOURCE_DIR}/.git/HEAD)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/.git/HEAD)
  # The reflog grows with every commit and checkout, also when the branch's
  # ref lives in packed-refs (then the loose ref below does not exist).
  if(EXISTS ${PROJECT_SOURCE_DIR}/.git/logs/HEAD)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/.git/logs/HEAD)
  endif()
  file(READ ${PROJECT_SOURCE_DIR}/.git/HEAD git_head)
  if(git_head MATCHES "^ref: (.*)\n" AND EXISTS ${PROJECT_SOURCE_DIR}/.git/${CMAKE_MATCH_1})
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/.git/${CMAKE_MATCH_1})
  endif()
endif()
configure_file(${PROJECT_SOURCE_DIR}/core/version.h.in ${PROJECT_BINARY_DIR}/generated/core/version.h @ONLY)
