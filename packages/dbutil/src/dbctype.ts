/** Whitespace as the C locale's isspace sees it, ASCII only. @dropbear dbctype.c ascii_isspace */
export function ascii_isspace(c: string | undefined): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\v" || c === "\f" || c === "\r";
}

/** Lower-case an ASCII letter and nothing else (strncasecmp in the C locale). @dropbear dbctype.c ascii_tolower */
export function ascii_tolower(c: string): string {
  return c >= "A" && c <= "Z" ? String.fromCharCode(c.charCodeAt(0) + 32) : c;
}
