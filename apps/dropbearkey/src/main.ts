// dropbearkey's entry point.
import { dropbearMain } from "@dropbear-ts/dbutil";
import { dropbearkey_main } from "./dropbearkey.js";

dropbearMain("dropbearkey", dropbearkey_main);
