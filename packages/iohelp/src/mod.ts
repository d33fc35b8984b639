// libiohelp's public face: the two sides of reauthentication.
export { serverAuthenticate, userReauthenticate, noIds, type Ids, type ServerAuthenticateOptions, type UserReauthenticateOptions } from "./reauth.js";
