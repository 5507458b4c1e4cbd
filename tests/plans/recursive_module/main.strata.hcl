# A module that calls itself twice once loaded 2^16 copies before giving up.
module "loop" {
  source = "./modules/loop"
}
