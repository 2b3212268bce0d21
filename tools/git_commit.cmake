# Writes OUT, a header defining CBINFER_GIT_COMMIT as the source tree's short
# commit ("-dirty" appended when tracked files differ from it, "unknown"
# outside a git checkout; COMMIT, when given, instead: a copy of the tree
# without .git names its commit so). Run at every build (cmake -DSRC=... -DOUT=... -P),
# so reports name the commit that was built, not the one configured; OUT is
# rewritten only when the text changes, so an unchanged tree rebuilds nothing.
execute_process(COMMAND git rev-parse --short HEAD WORKING_DIRECTORY ${SRC}
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE rc ERROR_QUIET)
if(COMMIT)
  set(commit "${COMMIT}")
elseif(NOT rc EQUAL 0 OR NOT commit)
  set(commit unknown)
else()
  execute_process(COMMAND git diff --quiet HEAD -- WORKING_DIRECTORY ${SRC}
                  RESULT_VARIABLE dirty ERROR_QUIET)
  if(NOT dirty EQUAL 0)
    set(commit "${commit}-dirty")
  endif()
endif()
set(text "#define CBINFER_GIT_COMMIT \"${commit}\"\n")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT "${old}" STREQUAL "${text}")
  file(WRITE ${OUT} "${text}")
endif()
