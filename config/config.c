/* placeholder until the module lands */
typedef int iocd_placeholder_unit;
