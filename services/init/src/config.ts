// init's bounds and settings, each with its default and why.

export interface InitConfig {
  /** How long boot waits for proc and auth to check in before giving up, ms. */
  bootTimeoutMs: number;
  /** How often boot says what it is still waiting for, ms. */
  bootReportMs: number;
  /** startup_dosync timeout per registered party at shutdown (the Hurd's 60 s). */
  dosyncTimeoutMs: number;
  /** Parties that may register for shutdown notices. */
  maxNotifiees: number;
}

export const defaultInitConfig: InitConfig = {
  bootTimeoutMs: 60_000,
  bootReportMs: 5_000,
  dosyncTimeoutMs: 60_000,
  maxNotifiees: 256,
};
