/** Dropbear's version string. @dropbear sysoptions.h DROPBEAR_VERSION */
export const DROPBEAR_VERSION = "2026.94";
