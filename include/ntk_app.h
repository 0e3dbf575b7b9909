/* ntk_app: the commands of the ntkspec program (run, ...), each a function that takes
 * the command's arguments and returns the process exit status: 0 success, 2 bad input
 * (usage, config, data), 1 any other failure.  main.c only dispatches. */
#ifndef NTK_APP_H
#define NTK_APP_H

int ntk_app_run(int argc, char **argv);
void ntk_app_usage(void);

#endif
