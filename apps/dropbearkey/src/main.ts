// dropbearkey's entry point. Parsing works; key generation and -y are not ported yet.
import { dropbearMain } from "@dropbear-ts/dbutil";
import { dropbearkey_main } from "./dropbearkey.js";

dropbearMain("dropbearkey", dropbearkey_main);
