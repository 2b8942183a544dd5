// dropbearconvert's entry point. Parsing works; conversion is not ported yet.
import { dropbearMain } from "@dropbear-ts/dbutil";
import { dropbearconvert_main } from "./dropbearconvert.js";

dropbearMain("dropbearconvert", dropbearconvert_main);
