# Run by `cmake --install` (install(SCRIPT) in deploy/CMakeLists.txt, which
# sets the IOCD_* variables below first): installs the configuration, the
# systemd unit and the shared files, with the paths of this install, which
# are known only now (`cmake --install --prefix DIR` changes the prefix
# after configuring). file(INSTALL) adds $ENV{DESTDIR} to every destination
# and records each file in install_manifest.txt.
#
#   IOCD_SOURCE_DIR   the source tree
#   IOCD_STAGE_DIR    a scratch directory in the build tree
#   IOCD_BINDIR, IOCD_SYSCONFDIR, IOCD_DATADIR, IOCD_DOCDIR
#                     GNUInstallDirs' CMAKE_INSTALL_<dir> (relative to the
#                     prefix unless absolute)
#   IOCD_UNITDIR      IOCD_SYSTEMD_UNITDIR (the same)

# The prefix without a trailing slash ("" for /).
string(REGEX REPLACE "/+$" "" iocd_prefix "${CMAKE_INSTALL_PREFIX}")

# Sets out to dir under the prefix, or dir itself when it is absolute.
function(iocd_full dir out)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "${iocd_prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

iocd_full("${IOCD_BINDIR}" IOCD_FULL_BINDIR)
iocd_full("${IOCD_DATADIR}" IOCD_FULL_DATADIR)
iocd_full("${IOCD_DOCDIR}" IOCD_FULL_DOCDIR)
iocd_full("${IOCD_UNITDIR}" IOCD_FULL_UNITDIR)
# /etc for the system's prefixes, as GNUInstallDirs does for /usr, and for
# /usr/local too: the unit, deploy/install and the documentation use
# /etc/iocd, where administrators look.
if(IS_ABSOLUTE "${IOCD_SYSCONFDIR}")
  set(IOCD_FULL_SYSCONFDIR "${IOCD_SYSCONFDIR}")
elseif(iocd_prefix MATCHES "^(/usr|/usr/local)?$")
  set(IOCD_FULL_SYSCONFDIR "/etc")
else()
  set(IOCD_FULL_SYSCONFDIR "${iocd_prefix}/${IOCD_SYSCONFDIR}")
endif()
set(IOCD_CONFDIR "${IOCD_FULL_SYSCONFDIR}/iocd")
# The unit's StateDirectory=iocd, wherever the prefix is.
set(IOCD_STATE_DIR "/var/lib/iocd")

set(iocd_rw_r_r OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# A scratch directory of this run's own: installs may run side by side
# (the tests do).
string(RANDOM LENGTH 12 iocd_run)
set(IOCD_STAGE_DIR "${IOCD_STAGE_DIR}/${iocd_run}")
file(MAKE_DIRECTORY "${IOCD_STAGE_DIR}/credentials")

# Installs src as IOCD_CONFDIR/name (mode: the remaining arguments), unless
# that file exists: then it is kept, and src goes beside it as name.new
# when it differs (a stale name.new is removed when it does not). A macro:
# file(INSTALL) records what it installs in the caller's scope.
macro(iocd_install_conf src name)
  get_filename_component(iocd_sub "${name}" DIRECTORY)
  get_filename_component(iocd_base "${name}" NAME)
  set(iocd_dir "${IOCD_CONFDIR}")
  if(iocd_sub)
    set(iocd_dir "${iocd_dir}/${iocd_sub}")
  endif()
  set(iocd_have "$ENV{DESTDIR}${iocd_dir}/${iocd_base}")
  set(iocd_differs 1)
  if(EXISTS "${iocd_have}")
    execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files "${src}"
      "${iocd_have}" RESULT_VARIABLE iocd_differs OUTPUT_QUIET ERROR_QUIET)
    if(iocd_differs)
      file(INSTALL "${src}" DESTINATION "${iocd_dir}"
        RENAME "${iocd_base}.new" FILE_PERMISSIONS ${ARGN})
      message(STATUS "Kept: ${iocd_dir}/${iocd_base}; the shipped version "
        "is ${iocd_dir}/${iocd_base}.new")
    else()
      file(REMOVE "${iocd_have}.new")
      message(STATUS "Up-to-date: ${iocd_dir}/${iocd_base}")
    endif()
  else()
    file(INSTALL "${src}" DESTINATION "${iocd_dir}" RENAME "${iocd_base}"
      FILE_PERMISSIONS ${ARGN})
  endif()
endmacro()

# The example configuration, with data_dir in the state directory (the
# only place the unit lets iocd write).
file(READ "${IOCD_SOURCE_DIR}/config/iocd.example.jsonc" iocd_config)
string(REGEX REPLACE "\n  \"data_dir\": \"[^\"\n]*\"" "\n  \"data_dir\": \"${IOCD_STATE_DIR}\""
  iocd_config_out "${iocd_config}")
if(iocd_config_out STREQUAL iocd_config AND
    NOT iocd_config MATCHES "\n  \"data_dir\": \"${IOCD_STATE_DIR}\"")
  message(FATAL_ERROR "config/iocd.example.jsonc: no top-level \"data_dir\" "
    "line to set to ${IOCD_STATE_DIR}")
endif()
file(WRITE "${IOCD_STAGE_DIR}/iocd.jsonc" "${iocd_config_out}")
iocd_install_conf("${IOCD_STAGE_DIR}/iocd.jsonc" iocd.jsonc ${iocd_rw_r_r})
file(GLOB iocd_rules "${IOCD_SOURCE_DIR}/config/rules/*.jsonc")
foreach(f ${iocd_rules})
  get_filename_component(n "${f}" NAME)
  iocd_install_conf("${f}" "rules/${n}" ${iocd_rw_r_r})
endforeach()

# Secrets: iocd.env (read by systemd, not by iocd) and credentials/.
file(WRITE "${IOCD_STAGE_DIR}/iocd.env"
  "# The environment of iocd (the unit's EnvironmentFile=, read by systemd\n"
  "# as root; keep this file root:root 0600): the secrets iocd.jsonc names\n"
  "# as \${NAME}, one NAME=value a line, e.g.\n"
  "# IOCD_MQTT_PASSWORD=...\n"
  "# IOCD_INFLUX_PASSWORD=...\n"
  "# After a change: systemctl restart iocd.\n")
if(NOT EXISTS "$ENV{DESTDIR}${IOCD_CONFDIR}/iocd.env")
  file(INSTALL "${IOCD_STAGE_DIR}/iocd.env" DESTINATION "${IOCD_CONFDIR}"
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE)
endif()
if(NOT EXISTS "$ENV{DESTDIR}${IOCD_CONFDIR}/credentials")
  file(INSTALL "${IOCD_STAGE_DIR}/credentials" DESTINATION "${IOCD_CONFDIR}"
    DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)
endif()

# The unit, with this install's paths.
configure_file("${IOCD_SOURCE_DIR}/deploy/iocd.service.in"
  "${IOCD_STAGE_DIR}/iocd.service" @ONLY)
file(INSTALL "${IOCD_STAGE_DIR}/iocd.service"
  DESTINATION "${IOCD_FULL_UNITDIR}" FILE_PERMISSIONS ${iocd_rw_r_r})

# Shared files, when the tree has them.
foreach(d grafana deploy/mosquitto)
  if(IS_DIRECTORY "${IOCD_SOURCE_DIR}/${d}")
    file(INSTALL "${IOCD_SOURCE_DIR}/${d}"
      DESTINATION "${IOCD_FULL_DATADIR}/iocd" USE_SOURCE_PERMISSIONS)
  endif()
endforeach()

file(REMOVE_RECURSE "${IOCD_STAGE_DIR}")
