/*
 * The alert state file, DATA_DIR/rules-state.json: the engine's instances
 * written out so that a restart neither forgets what is firing nor notifies
 * it twice. Internal to alerts/; failures are logged (module "rules") here,
 * counted by the caller.
 */
#ifndef IOCD_ALERTS_STATE_FILE_H
#define IOCD_ALERTS_STATE_FILE_H

#include "rules/engine.h"

/* Writes the state of e atomically and durably (core/file.h), creating
 * data_dir when missing. Returns IOCD_OK, or the engine's error / IOCD_EIO
 * after logging why; the previous file then stays as it was. */
int state_file_save(const struct engine *e, const char *data_dir);

/* Restores the state file of data_dir into e, if there is one; call it
 * before any data arrives. A file that cannot be read or parsed is logged
 * and left alone: e then starts afresh. */
void state_file_restore(struct engine *e, const char *data_dir);

#endif
