# The one native part of virtkit: SO_PEERCRED for the daemon's unix socket (native/peer_cred.c).
# Built by `npm ci` / `npm install` (the package's install script runs native/build.mjs).
{
  'targets': [
    {
      'target_name': 'peer_cred',
      'sources': ['native/peer_cred.c'],
      'cflags': ['-Wall', '-Wextra', '-Werror'],
    },
  ],
}
