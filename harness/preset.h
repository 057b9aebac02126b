/*
 * preset.h: named bundles of `run` settings (preset.c): data only; cli/cmd_run.c applies them
 */
#ifndef LCG_PRESET_H
#define LCG_PRESET_H


/* ---- presets (harness/preset.c) --------------------------------------------------------- */
int lcg_preset_known(const char *name);
/* the k-th "flag=value;..." settings of preset `name` for `task` (the task's own, then
 * those of every task, then the same of its base preset, if any), or NULL after the last */
const char *lcg_preset_settings(const char *name, const char *task, int k);
/* the i-th preset's name (in the table's order), or NULL past the last */
const char *lcg_preset_at(int i);
/* "paper, gpu, mini, ci": the names, for messages */
const char *lcg_preset_names(void);

#endif
