// dropbearconvert's entry point.
import { dropbearMain } from "@dropbear-ts/dbutil";
import { dropbearconvert_main } from "./dropbearconvert.js";

dropbearMain("dropbearconvert", dropbearconvert_main);
